// The shell: hash routing (#/jobs, #/jobs/ftjob-..., ...), the key page, the navigation's current page.

import { apiKey, get, setApiKey, whenUnauthorized } from "./api.js";
import { errorBox, h, replace } from "./ui.js";
import * as evals from "./pages/evals.js";
import * as files from "./pages/files.js";
import * as job from "./pages/job.js";
import * as jobs from "./pages/jobs.js";
import * as models from "./pages/models.js";
import * as newJob from "./pages/new_job.js";
import * as playground from "./pages/playground.js";

const ROUTES = [
  [/^\/jobs\/?$/, jobs, "jobs"],
  [/^\/jobs\/([^/]+)$/, job, "jobs"],
  [/^\/new-job$/, newJob, "new-job"],
  [/^\/files$/, files, "files"],
  [/^\/models$/, models, "models"],
  [/^\/playground$/, playground, "playground"],
  [/^\/evals$/, evals, "evals"],
];

const main = document.getElementById("main");
let current = new AbortController();
let askingForKey = false;

function route() {
  current.abort(); // the page being left stops its polling and streams
  current = new AbortController();
  if (askingForKey) return showKeyPage();
  const [path, query = ""] = (location.hash.replace(/^#/, "") || "/jobs").split("?");
  const found = ROUTES.map(([pattern, page, nav]) => [path.match(pattern), page, nav]).find(([m]) => m);
  markNav(found ? found[2] : null);
  if (!found) {
    replace(main, h("h1", {}, "Not found"), h("p", {}, "No such page. ", h("a", { href: "#/jobs" }, "Go to the jobs.")));
    return;
  }
  const [match, page] = found;
  const params = Object.fromEntries(new URLSearchParams(query));
  const title = h("h1", {}, "…");
  replace(main, title);
  page.render(main, { id: match[1] ? decodeURIComponent(match[1]) : null, params, signal: current.signal })
    .catch((error) => {
      if (error.name === "AbortError" || current.signal.aborted) return;
      main.append(errorBox(error));
    });
}

function markNav(name) {
  for (const link of document.querySelectorAll("nav a[data-page]")) {
    if (link.dataset.page === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function showKeyState() {
  const box = document.getElementById("key-state");
  if (!apiKey()) return replace(box);
  replace(box, h("button", { type: "button", class: "link", onclick: () => { setApiKey(""); location.reload(); } }, "Forget API key"));
}

/** The server requires a key and has none (or a wrong one) from us: ask for it before anything else. */
function showKeyPage(message) {
  current.abort();
  askingForKey = true;
  markNav(null);
  const input = h("input", { id: "api-key", name: "api-key", type: "password", autocomplete: "off", required: true, placeholder: "sk-openft-..." });
  const problem = h("p", { class: "error", role: "alert", hidden: !message }, message || "");
  const form = h("form", { class: "key-form" },
    h("label", { for: "api-key" }, "API key"), input,
    h("button", { type: "submit" }, "Use this key"), problem);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    setApiKey(input.value.trim());
    try {
      await get("/models");
      askingForKey = false;
      showKeyState();
      route();
    } catch (error) {
      setApiKey("");
      replace(problem, error.message);
      problem.hidden = false;
    }
  });
  replace(main,
    h("h1", {}, "API key needed"),
    h("p", {}, "This server requires an API key. It is kept in this browser tab only (sessionStorage) and sent to this server's API, nowhere else. Create one on the server with ",
      h("code", {}, "openft keys create --project NAME"), "."),
    form);
  input.focus();
}

whenUnauthorized((error) => {
  if (!askingForKey) showKeyPage(apiKey() ? error.message : "");
});

window.addEventListener("hashchange", route);
showKeyState();
// One look at /v1/models tells whether a key is needed; in local mode nothing is asked.
get("/models").then(route, (error) => {
  if (error.status !== 401) route();
});
