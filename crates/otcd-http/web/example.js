// The example page's "host application" part. A real host app gets the session token from its own backend,
// which calls POST /v1/sessions with its signed API key; here the token arrives in the URL fragment
// (#token=..., printed by `otcd demo`; a fragment is never sent to any server) or is pasted into the form.
import { configure } from "/ui/components/otcd-components.js";

const status = document.getElementById("session-status");
const formSection = document.getElementById("token-form-section");

function useToken(token) {
  sessionStorage.setItem("otcd-example-token", token);
  history.replaceState(null, "", window.location.pathname);
  configure({ token });
  formSection.hidden = true;
  status.textContent = "Session active";
  status.className = "session ok";
}

const fragment = new URLSearchParams(window.location.hash.slice(1));
const token = fragment.get("token") || sessionStorage.getItem("otcd-example-token");
if (token) {
  useToken(token);
} else {
  formSection.hidden = false;
}

// A new link with another token while the page is open (same document, only the fragment changes).
window.addEventListener("hashchange", () => {
  const next = new URLSearchParams(window.location.hash.slice(1)).get("token");
  if (next) useToken(next);
});

document.getElementById("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const value = new FormData(event.target).get("token").trim();
  if (value) useToken(value);
});

document.addEventListener("otcd-session-expired", () => {
  sessionStorage.removeItem("otcd-example-token");
  status.textContent = "Session expired: get a new token";
  status.className = "session bad";
  formSection.hidden = false;
});
