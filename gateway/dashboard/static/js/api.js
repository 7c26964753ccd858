// Every call to the gateway: the key as an Authorization header (never in a URL or a
// cookie), JSON bodies with their content type (the gateway's browser guard refuses a
// POST without it), and refusals turned into ApiError from the API's error envelope.

import { keyFor } from "./keys.js";

export class ApiError extends Error {
  constructor(status, message, code, path) {
    super(message);
    this.status = status;
    this.code = code;
    this.path = path;
  }

  // Which key a 401 asks for: the admin routes' or the model routes'.
  get keyKind() {
    return this.path.startsWith("/admin/") ? "admin" : "api";
  }
}

export async function request(path, { method = "GET", body, signal } = {}) {
  const headers = { accept: "application/json, text/event-stream" };
  const key = keyFor(path);
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    cache: "no-store",
    credentials: "omit",
  });
  if (!response.ok) throw await refusal(response, path);
  return response;
}

export async function getJson(path, options) {
  return (await request(path, options)).json();
}

export async function postJson(path, body, options = {}) {
  return (await request(path, { ...options, method: "POST", body })).json();
}

async function refusal(response, path) {
  let message = `${response.status} ${response.statusText}`;
  let code = null;
  try {
    const error = (await response.json()).error;
    if (error && typeof error === "object") {
      message = error.message ?? message;
      code = error.code ?? null;
    } else if (typeof error === "string") {
      message = error;
    }
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, message, code, path);
}
