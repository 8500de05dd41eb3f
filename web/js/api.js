// The API client: JSON over fetch with the bearer token from the session, and what the
// server offers, read from its OpenAPI document (views show only what exists).

import { session } from "./session.js";

export class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.code = code || "error";
    // The whole error object, e.g. the findings of a refused knowledge entry.
    this.details = details;
  }
}

let onUnauthenticated = () => {};

export function whenUnauthenticated(callback) {
  onUnauthenticated = callback;
}

async function send(method, path, { accept, body, contentType, token } = {}) {
  const headers = { Accept: accept };
  const bearer = token || session.token;
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const init = { method, headers, cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    if (contentType) headers["Content-Type"] = contentType;
    init.body = body;
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, "network", "");
  }
  if (!response.ok) {
    let error;
    try {
      error = (await response.json()).error || {};
    } catch {
      error = {};
    }
    if (response.status === 401 && bearer) onUnauthenticated();
    throw new ApiError(response.status, error.code, error.message, error);
  }
  return response;
}

export async function api(method, path, body, { text = false, token } = {}) {
  const response = await send(method, path, {
    accept: text ? "text/plain" : "application/json", token,
    body: body === undefined ? undefined : JSON.stringify(body),
    contentType: body === undefined ? undefined : "application/json",
  });
  if (response.status === 204) return null;
  return text ? response.text() : response.json();
}

/** A multipart upload (the browser sets the boundary); answers the JSON body. */
export async function upload(path, formData) {
  const response = await send("POST", path, { accept: "application/json", body: formData });
  return response.json();
}

/** A file fetched with the bearer token (never in a URL): ``{blob, filename}``. */
export async function download(path) {
  const response = await send("GET", path, { accept: "*/*" });
  const disposition = response.headers.get("Content-Disposition") || "";
  let filename;
  const encoded = /filename\*=UTF-8''([^;]+)/i.exec(disposition);
  if (encoded) {
    try {
      filename = decodeURIComponent(encoded[1]);
    } catch {
      filename = "";
    }
  } else {
    filename = (/filename="?([^";]+)"?/i.exec(disposition) || [])[1] || "";
  }
  return { blob: await response.blob(), filename };
}

/** Hand a Blob to the browser as a download through a short-lived object URL. */
export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = filename || "download";
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export function query(path, params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") search.set(key, value);
  }
  const text = search.toString();
  return text ? `${path}?${text}` : path;
}

let documentPromise = null;
let paths = {};

export async function loadCapabilities() {
  if (!documentPromise) {
    documentPromise = api("GET", "/api/v1/openapi.json").then((doc) => {
      paths = doc.paths || {};
      return doc;
    });
  }
  return documentPromise;
}

/** Whether the server offers ``method path`` (as written in its OpenAPI document). */
export function offers(method, path) {
  return Boolean(paths[path] && paths[path][method.toLowerCase()]);
}

/**
 * Whether the signed-in user may attempt ``method path``: the server offers it and one of the
 * user's roles is among the operation's ``x-roles`` (the server's one action → roles table;
 * an operation without them is open to any signed-in user, the server decides the rest).
 */
export function may(method, path) {
  const operation = paths[path] && paths[path][method.toLowerCase()];
  if (!operation) return false;
  const roles = operation["x-roles"];
  return !roles || roles.some((role) => session.has(role));
}

/** The first offered path that starts with ``prefix``, or null. */
export function offeredPath(method, prefix) {
  return Object.keys(paths).find((p) => p.startsWith(prefix) && paths[p][method.toLowerCase()]) || null;
}
