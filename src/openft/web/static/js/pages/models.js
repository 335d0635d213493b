// #/models: base models, fine-tuned models and checkpoints' models; try one, delete a fine-tuned one.

import { del, enc, get } from "../api.js";
import { modelKind } from "../models_common.js";
import { confirmButton, errorBox, h, replace, table, time } from "../ui.js";

const KINDS = ["base", "fine-tuned", "checkpoint"];

// What to do when a list is empty: where its models come from.
const EMPTY = {
  "fine-tuned": "No fine-tuned models yet: a job that succeeds makes one (New job).",
  checkpoint: "No checkpoints yet: each epoch of a job makes one; the last three are kept.",
};

export async function render(main, { signal }) {
  const problem = h("div");
  const lists = h("div");
  replace(main, h("h1", {}, "Models"), problem, lists);
  const load = async () => {
    const models = (await get("/models", { signal })).data;
    replace(lists, KINDS.map((kind) => [
      h("h2", {}, `${kind[0].toUpperCase()}${kind.slice(1)} models`),
      table(["Model", "Owner", "Created", ""], models.filter((m) => modelKind(m) === kind).map((m) => [
        h("span", { class: "mono" }, m.id), m.owned_by, time(m.created),
        h("div", { class: "actions" },
          h("a", { href: `#/playground?model=${enc(m.id)}` }, "Try it"),
          kind === "base" && h("a", { href: `#/new-job?model=${enc(m.id)}` }, "Fine-tune"),
          kind !== "base" && confirmButton("Delete", async () => {
            try {
              await del(`/models/${enc(m.id)}`);
            } catch (error) {
              replace(problem, errorBox(error));
            }
            await load();
          })),
      ]), { empty: EMPTY[kind] || `No ${kind} models.`, label: `${kind} models` }),
    ]));
  };
  await load();
}
