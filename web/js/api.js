// The API client: JSON over fetch with the bearer token from the session, and what the
// server offers, read from its OpenAPI document (views show only what exists).

import { session } from "./session.js";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.code = code || "error";
  }
}

let onUnauthenticated = () => {};

export function whenUnauthenticated(callback) {
  onUnauthenticated = callback;
}

export async function api(method, path, body, { text = false, token } = {}) {
  const headers = { Accept: text ? "text/plain" : "application/json" };
  const bearer = token || session.token;
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const init = { method, headers, cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, "network", "");
  }
  if (!response.ok) {
    let error = {};
    try {
      error = (await response.json()).error || {};
    } catch {
      error = {};
    }
    if (response.status === 401 && bearer) onUnauthenticated();
    throw new ApiError(response.status, error.code, error.message);
  }
  if (response.status === 204) return null;
  return text ? response.text() : response.json();
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

/** The first offered path that starts with ``prefix``, or null. */
export function offeredPath(method, prefix) {
  return Object.keys(paths).find((p) => p.startsWith(prefix) && paths[p][method.toLowerCase()]) || null;
}
