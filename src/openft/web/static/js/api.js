// The public /v1 API, as any client reaches it: a bearer key (kept in sessionStorage only) on every call.

const KEY_STORAGE = "openft.apiKey";
let onUnauthorized = () => {};

export function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE) || "";
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}

/** Called with the error whenever the server answers 401 (no key, or one it does not know). */
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `The server answered ${status}.`);
    this.status = status;
    this.param = body?.error?.param || null;
    this.code = body?.error?.code || null;
  }
}

function headers(extra = {}) {
  const key = apiKey();
  return key ? { ...extra, authorization: `Bearer ${key}` } : extra;
}

async function fail(response) {
  const body = await response.json().catch(() => null);
  const error = new ApiError(response.status, body);
  if (response.status === 401) onUnauthorized(error);
  throw error;
}

export async function request(method, path, { json, signal } = {}) {
  const init = { method, signal, headers: headers(json === undefined ? {} : { "content-type": "application/json" }) };
  if (json !== undefined) init.body = JSON.stringify(json);
  const response = await fetch(`/v1${path}`, init);
  if (!response.ok) await fail(response);
  return response.json();
}

export const get = (path, options) => request("GET", path, options);
export const post = (path, json, options = {}) => request("POST", path, { ...options, json });
export const del = (path, options) => request("DELETE", path, options);

export const enc = encodeURIComponent;

/** Every item of a cursor-paged list (`has_more` + `after`), up to `max` items. */
export async function listAll(path, { max = 1000, limit = 100, signal } = {}) {
  const items = [];
  let after = null;
  for (;;) {
    const sep = path.includes("?") ? "&" : "?";
    const page = await get(`${path}${sep}limit=${limit}${after ? `&after=${enc(after)}` : ""}`, { signal });
    items.push(...page.data);
    if (!page.has_more || page.data.length === 0 || items.length >= max) return items;
    after = page.data[page.data.length - 1].id;
  }
}

/**
 * A Server-Sent Events answer read through fetch (EventSource cannot send the key): calls
 * `onEvent({event, id, data})` per event until the server ends the stream or `signal` aborts.
 */
export async function readEvents(method, path, { json, signal, onEvent }) {
  const init = { method, signal, headers: headers(json === undefined ? {} : { "content-type": "application/json" }) };
  if (json !== undefined) init.body = JSON.stringify(json);
  const response = await fetch(`/v1${path}`, init);
  if (!response.ok) await fail(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replaceAll("\r\n", "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const event = parseBlock(block);
      if (event) onEvent(event);
    }
  }
}

function parseBlock(block) {
  const event = { event: "message", id: null, data: [] };
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "data") event.data.push(value);
    else if (field === "event") event.event = value;
    else if (field === "id") event.id = value;
  }
  if (event.data.length === 0) return null;
  return { ...event, data: event.data.join("\n") };
}

// Files above this size go through the Uploads API in parts of this size (a part may be up to 64 MB):
// a dropped connection then costs one part, not the whole file, and no request holds the whole file.
export const PART_BYTES = 8 * 1024 * 1024;

/** POST a form with XMLHttpRequest (fetch has no upload progress): `onProgress(bytesSent)`. */
function sendForm(path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/v1${path}`);
    for (const [name, value] of Object.entries(headers())) xhr.setRequestHeader(name, value);
    xhr.upload.addEventListener("progress", (e) => onProgress(e.loaded));
    xhr.addEventListener("load", () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) return resolve(body);
      const error = new ApiError(xhr.status, body);
      if (xhr.status === 401) onUnauthorized(error);
      reject(error);
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, { error: { message: "The upload failed: the server could not be reached." } })));
    xhr.send(form);
  });
}

/**
 * Upload a file and answer its File object; `onProgress(share sent, parts note)` as it goes. Up to
 * PART_BYTES: one multipart POST /v1/files. Larger: POST /v1/uploads, its parts one after another
 * (POST /v1/uploads/{id}/parts), then /complete; a failure cancels the upload.
 */
export async function uploadFile(file, purpose, onProgress) {
  if (file.size <= PART_BYTES) {
    const form = new FormData();
    form.append("purpose", purpose);
    form.append("file", file, file.name);
    return sendForm("/files", form, (sent) => onProgress(file.size ? Math.min(1, sent / file.size) : 1, null));
  }
  const upload = await post("/uploads", {
    filename: file.name, purpose, bytes: file.size, mime_type: file.type || "application/jsonl",
  });
  const nParts = Math.ceil(file.size / PART_BYTES);
  try {
    const partIds = [];
    for (let i = 0; i < nParts; i++) {
      const start = i * PART_BYTES;
      const form = new FormData();
      form.append("data", file.slice(start, start + PART_BYTES), `part-${i + 1}`);
      const note = `part ${i + 1} of ${nParts}`;
      onProgress(start / file.size, note);
      const part = await sendForm(`/uploads/${enc(upload.id)}/parts`, form,
        (sent) => onProgress(Math.min(1, (start + sent) / file.size), note));
      partIds.push(part.id);
    }
    const done = await post(`/uploads/${enc(upload.id)}/complete`, { part_ids: partIds });
    return done.file;
  } catch (error) {
    post(`/uploads/${enc(upload.id)}/cancel`).catch(() => {});
    throw error;
  }
}

/**
 * Save a file's content (GET /v1/files/{id}/content, with the key) under `filename`. A job's result
 * file is stored base64-encoded, as OpenAI stores it: `base64` saves the decoded CSV instead. `path`
 * (under /v1) saves another download that needs the key, such as a job's evaluation report.
 */
export async function downloadFile(fileId, filename, { base64 = false, path = null } = {}) {
  const response = await fetch(`/v1${path || `/files/${enc(fileId)}/content`}`, { headers: headers() });
  if (!response.ok) await fail(response);
  let blob = await response.blob();
  if (base64) {
    const bytes = Uint8Array.from(atob((await blob.text()).trim()), (c) => c.charCodeAt(0));
    blob = new Blob([bytes], { type: "text/csv" });
  }
  const url = URL.createObjectURL(blob);
  const link = Object.assign(document.createElement("a"), { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
