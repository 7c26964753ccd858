// The admin key and the API key, kept in this tab only (sessionStorage), and the dialog
// that asks for one when the gateway answers 401.

import { $, setText } from "./dom.js";

const STORAGE = { admin: "lmx.adminKey", api: "lmx.apiKey" };
const NAMES = { admin: "admin key (security.admin_key)", api: "API key (security.api_keys)" };

export function getKey(kind) {
  return sessionStorage.getItem(STORAGE[kind]) || null;
}

// One key may serve both kinds, as with the lmx command's LMX_ADMIN_KEY / LMX_API_KEY.
export function keyFor(path) {
  const admin = getKey("admin");
  const api = getKey("api");
  return path.startsWith("/admin/") ? admin ?? api : api ?? admin;
}

export function forgetKeys() {
  for (const name of Object.values(STORAGE)) sessionStorage.removeItem(name);
}

export class KeyDialog {
  constructor(onKey) {
    this.dialog = $("#key-dialog");
    this.input = $("#key-input");
    this.onKey = onKey;
    this.kind = "admin";
    $("#key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    $("#key-cancel").addEventListener("click", () => this.dialog.close());
  }

  get open() {
    return this.dialog.open;
  }

  // `refused`: a key was sent and the gateway said no, so say that rather than "needed".
  // While one kind is being asked for, another waits: the calls after this key is given
  // ask again if they still need it.
  ask(kind, refused) {
    if (this.dialog.open && kind !== this.kind) return;
    this.kind = kind;
    this.dialog.dataset.kind = kind;
    setText($("#key-title"), kind === "admin" ? "Admin key" : "API key");
    const reason = refused
      ? `The gateway refused the ${NAMES[kind]}. Enter it again.`
      : `This gateway needs its ${NAMES[kind]}.`;
    setText($("#key-reason"), reason);
    if (!this.dialog.open) {
      this.input.value = "";
      this.dialog.showModal();
    }
    this.input.focus();
  }

  submit() {
    const key = this.input.value.trim();
    if (!key) return;
    sessionStorage.setItem(STORAGE[this.kind], key);
    this.input.value = "";
    this.dialog.close();
    this.onKey(this.kind);
  }
}
