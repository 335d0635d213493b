// Which kind a model id is: a base model of the catalog, a fine-tuned model, or a checkpoint's model.

export function modelKind(model) {
  if (model.id.includes(":ckpt-step-")) return "checkpoint";
  if (model.id.startsWith("ft:")) return "fine-tuned";
  return "base";
}
