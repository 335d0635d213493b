"""What a job's `model` names: a base model of the catalog, or a fine-tuned model the project may use."""

from __future__ import annotations

from dataclasses import dataclass

from openft.errors import InvalidRequest
from openft.models.catalog import Catalog
from openft.models.defaults import TrainingDefaults
from openft.models.errors import UnknownModelError
from openft.services.checkpoint_permissions import usable_model
from openft.services.context import ServiceContext
from openft.train.spec import find_base_model


@dataclass(frozen=True)
class BaseModelChoice:
    """The root base model, and the adapter to start from when continuing a fine-tuned model."""

    name: str
    defaults: TrainingDefaults
    context_length: int
    init_adapter_path: str | None


def catalog(ctx: ServiceContext) -> Catalog:
    return Catalog(ctx.settings.models_dir)


def resolve_base_model(ctx: ServiceContext, project_id: str, name: str) -> BaseModelChoice:
    if name.startswith("ft:"):
        with ctx.db.session() as session:
            row = usable_model(session, project_id, name)  # its own, or shared with it
        if row is None:
            raise _not_available(name)
        root = resolve_base_model(ctx, project_id, row.base_model)
        return BaseModelChoice(row.base_model, root.defaults, root.context_length, row.path)
    try:
        found = find_base_model(ctx.settings.models_dir, name)
    except UnknownModelError as exc:
        raise _not_available(name) from exc
    return BaseModelChoice(found.name, found.defaults, found.context_length, None)


def _not_available(name: str) -> InvalidRequest:
    return InvalidRequest(
        f"Model {name} is not available for fine-tuning or does not exist. See `openft models list` "
        "for base models, or register a local one with `openft models add NAME PATH`.",
        param="model",
    )
