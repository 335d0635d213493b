// #/files: upload (with progress; large files in parts through the Uploads API) and the data check
// report; download and delete.

import { PART_BYTES, del, downloadFile, enc, get, listAll, uploadFile } from "../api.js";
import { checkReport } from "../check_report.js";
import { busy, bytes, confirmButton, errorBox, h, replace, table, time } from "../ui.js";

const PURPOSES = ["fine-tune", "evals", "batch", "user_data"];
const UNDOWNLOADABLE = new Set(["assistants", "user_data"]); // the API refuses their content, as OpenAI's does

export async function render(main, { signal }) {
  const fileInput = h("input", { id: "upload-file", name: "file", type: "file", accept: ".jsonl,.json,.csv,.txt", required: true });
  const purpose = h("select", { id: "upload-purpose", name: "purpose" }, PURPOSES.map((p) => h("option", { value: p }, p)));
  const uploadButton = h("button", { type: "submit", id: "upload-button" }, "Upload");
  const progress = h("progress", { id: "upload-progress", max: "1", value: "0", hidden: true, "aria-label": "Upload progress" });
  const status = h("div", { id: "upload-status", "aria-live": "polite" });
  const form = h("form", { class: "upload-form", "aria-label": "Upload a file" },
    h("div", { class: "field" }, h("label", { for: "upload-file" }, "File (JSONL)"), fileInput),
    h("div", { class: "field" }, h("label", { for: "upload-purpose" }, "Purpose"), purpose),
    uploadButton, progress);
  const report = h("div", { id: "check-report" });
  const list = h("div", { id: "files-list" });
  replace(main, h("h1", {}, "Files"), form, status, report, h("h2", {}, "Uploaded files"), list);

  const showCheck = async (file) => {
    replace(report, h("p", { role: "status" }, `Checking ${file.filename}…`));
    try {
      replace(report, h("h2", {}, `Check of ${file.filename}`), checkReport(await get(`/files/${enc(file.id)}/check`, { signal })));
    } catch (error) {
      replace(report, errorBox(error));
    }
  };
  const load = async () => {
    const files = await listAll("/files", { signal });
    replace(list, table(["File", "Id", "Purpose", "Size", "Created", "Status", ""],
      files.map((file) => [
        file.filename, h("span", { class: "mono" }, file.id), file.purpose, bytes(file.bytes), time(file.created_at), file.status,
        h("div", { class: "actions" },
          file.purpose === "fine-tune" && h("button", { type: "button", "aria-label": `Check ${file.filename}`,
            onclick: (e) => busy(e.currentTarget, () => showCheck(file)) }, "Check"),
          !UNDOWNLOADABLE.has(file.purpose) && h("button", { type: "button", "aria-label": `Download ${file.filename}`,
            onclick: (e) => busy(e.currentTarget, () => downloadFile(file.id, file.filename).catch((err) => replace(status, errorBox(err)))) }, "Download"),
          confirmButton("Delete", async () => {
            replace(status);
            try {
              await del(`/files/${enc(file.id)}`);
            } catch (error) {
              replace(status, errorBox(error));
            }
            await load();
          })),
      ]), { empty: "No files yet. Upload a JSONL file above: one training example per line, as a chat ({\"messages\": [...]}) or a preference pair.", label: "Files" }));
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = fileInput.files[0];
    if (!file) return replace(status, errorBox(new Error("Choose a file to upload first.")));
    progress.hidden = false;
    progress.value = 0;
    uploadButton.disabled = true;
    const how = file.size > PART_BYTES ? ` in parts of ${bytes(PART_BYTES)}` : "";
    const line = h("p", { role: "status", id: "upload-line" }, `Uploading ${file.name} (${bytes(file.size)})${how}…`);
    replace(status, line);
    try {
      const uploaded = await uploadFile(file, purpose.value, (share, part) => {
        progress.value = share;
        line.textContent = `Uploading ${file.name} (${bytes(file.size)})${how}: ${Math.floor(share * 100)}%${part ? `, ${part}` : ""}…`;
      });
      progress.value = 1;
      replace(status, h("p", { role: "status", class: "ok-text" }, `Uploaded ${uploaded.filename} as `, h("span", { class: "mono", id: "uploaded-id" }, uploaded.id), "."));
      form.reset();
      await load();
      if (uploaded.purpose === "fine-tune") await showCheck(uploaded);
    } catch (error) {
      replace(status, errorBox(error));
    } finally {
      progress.hidden = true;
      uploadButton.disabled = false;
    }
  });
  await load();
}
