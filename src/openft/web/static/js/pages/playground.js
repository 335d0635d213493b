// #/playground: chat with a model, streamed; or with two or three side by side on the same conversation.

import { get, readEvents } from "../api.js";
import { modelKind } from "../models_common.js";
import { errorBox, h, replace } from "../ui.js";

const MAX_COLUMNS = 3;

export async function render(main, { params, signal }) {
  const models = (await get("/models", { signal })).data;
  const temperature = h("input", { id: "temperature", name: "temperature", type: "number", min: "0", max: "2", step: "0.1", value: "0.7" });
  const maxTokens = h("input", { id: "max-tokens", name: "max_tokens", type: "number", min: "1", max: "4096", step: "1", value: "256" });
  const system = h("textarea", { id: "system-prompt", name: "system", rows: "2", placeholder: "optional" });
  const prompt = h("textarea", { id: "prompt", name: "prompt", rows: "3", required: true, placeholder: "Say something… (Ctrl+Enter sends)" });
  const send = h("button", { type: "submit", id: "send" }, "Send");
  const addButton = h("button", { type: "button", id: "add-model" }, "Compare with another model");
  const clearButton = h("button", { type: "button", id: "clear" }, "Clear conversation");
  const columnsBox = h("div", { class: "columns", id: "columns" });
  const form = h("form", { class: "prompt-form", "aria-label": "Message" },
    h("label", { for: "prompt" }, "Message"), prompt, h("div", { class: "actions" }, send, clearButton));
  replace(main,
    h("h1", {}, "Playground"),
    h("div", { class: "toolbar" },
      h("div", { class: "field" }, h("label", { for: "temperature" }, "Temperature"), temperature),
      h("div", { class: "field" }, h("label", { for: "max-tokens" }, "Max tokens"), maxTokens),
      addButton),
    h("div", { class: "field wide" }, h("label", { for: "system-prompt" }, "System message"), system),
    columnsBox, form);

  const columns = [];
  let userTurns = []; // the shared conversation: every column answers the same user messages

  const addColumn = (modelId) => {
    const n = columns.length + 1;
    const select = h("select", { id: `model-${n}`, name: `model-${n}` },
      models.map((m) => h("option", { value: m.id }, `${m.id}${modelKind(m) === "base" ? "" : ` (${modelKind(m)})`}`)));
    if (modelId) select.value = modelId;
    const transcript = h("ol", { class: "transcript", "aria-live": "polite", "aria-label": `Conversation with model ${n}` });
    const column = { select, transcript, answers: [], element: null };
    const remove = n > 1 && h("button", { type: "button", class: "link", onclick: () => {
      columns.splice(columns.indexOf(column), 1);
      column.element.remove();
      addButton.disabled = false;
    } }, "Remove");
    column.element = h("section", { class: "column", dataset: { column: String(n) } },
      h("div", { class: "column-head" }, h("label", { for: `model-${n}` }, `Model ${n}`), select, remove), transcript);
    columns.push(column);
    columnsBox.append(column.element);
    addButton.disabled = columns.length >= MAX_COLUMNS;
    redraw(column);
  };

  const redraw = (column) => {
    replace(column.transcript, userTurns.flatMap((text, i) => [
      h("li", { class: "turn user" }, h("span", { class: "who" }, "You"), h("div", { class: "text" }, text)),
      column.answers[i] !== undefined && h("li", { class: "turn assistant" }, h("span", { class: "who" }, "Model"), h("div", { class: "text" }, column.answers[i])),
    ]));
  };

  const ask = async (column, turn) => {
    const messages = [];
    if (system.value.trim()) messages.push({ role: "system", content: system.value.trim() });
    userTurns.slice(0, turn + 1).forEach((text, i) => {
      messages.push({ role: "user", content: text });
      if (i < turn) messages.push({ role: "assistant", content: column.answers[i] || "" });
    });
    const text = h("div", { class: "text" });
    const answer = h("li", { class: "turn assistant answer", dataset: { state: "streaming", chunks: "0" } },
      h("span", { class: "who" }, column.select.value), text);
    column.transcript.append(answer);
    let content = "";
    let chunks = 0;
    try {
      await readEvents("POST", "/chat/completions", {
        signal,
        json: {
          model: column.select.value, messages, stream: true,
          temperature: Number(temperature.value), max_tokens: Number(maxTokens.value),
        },
        onEvent: ({ data }) => {
          if (data === "[DONE]") return;
          const chunk = JSON.parse(data);
          if (chunk.error) throw new Error(chunk.error.message);
          content += chunk.choices?.[0]?.delta?.content || "";
          answer.dataset.chunks = String(++chunks);
          text.textContent = content;
        },
      });
      answer.dataset.state = "done";
    } catch (error) {
      answer.dataset.state = "failed";
      answer.append(errorBox(error));
    }
    column.answers[turn] = content;
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = prompt.value.trim();
    if (!text) return;
    userTurns.push(text);
    prompt.value = "";
    send.disabled = true;
    for (const column of columns) {
      column.transcript.append(h("li", { class: "turn user" }, h("span", { class: "who" }, "You"), h("div", { class: "text" }, text)));
    }
    try {
      await Promise.all(columns.map((column) => ask(column, userTurns.length - 1)));
    } finally {
      send.disabled = false;
      prompt.focus();
    }
  });
  prompt.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
  });
  addButton.addEventListener("click", () => addColumn(columns[columns.length - 1]?.select.value));
  clearButton.addEventListener("click", () => {
    userTurns = [];
    for (const column of columns) {
      column.answers = [];
      redraw(column);
    }
  });
  addColumn(params.model);
  for (const extra of (params.compare || "").split(",").filter(Boolean).slice(0, MAX_COLUMNS - 1)) addColumn(extra);
  if (!params.model && models.length === 0) main.append(errorBox(new Error("No model is available on this server.")));
}
