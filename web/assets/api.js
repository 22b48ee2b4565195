// Same-origin calls to the FastGPU REST API with the bearer token kept in sessionStorage (gone when the
// tab closes; never in a cookie, so no request is authenticated by the browser on its own).
const KEY = 'fastgpu.token';

export const session = {
  token: () => sessionStorage.getItem(KEY),
  set: (t) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function errorOf(res) {
  const text = await res.text().catch(() => '');
  let code = 'http_' + res.status;
  let message = text || res.statusText || 'request failed';
  try {
    const body = JSON.parse(text);
    if (body && typeof body.error === 'object' && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
    } else if (body && typeof body.error === 'string') {
      code = body.error;
      message = body.error_description || body.error;
    }
  } catch { /* not JSON: keep the text */ }
  return new ApiError(res.status, code, message);
}

let onUnauthenticated = () => {};
export function setUnauthenticatedHandler(fn) { onUnauthenticated = fn; }

// Returns the parsed JSON body; `raw: true` returns the Response (streams, CSV). Throws ApiError; a 401
// otherwise ends the session (back to the login page) unless `quiet401` (the login itself).
export async function api(method, path, body, { raw = false, signal, quiet401 = false } = {}) {
  const headers = { Accept: raw ? '*/*' : 'application/json' };
  const t = session.token();
  if (t) headers.Authorization = 'Bearer ' + t;
  let payload;
  if (body instanceof URLSearchParams) {
    payload = body;
  } else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const res = await fetch(path, { method, headers, body: payload, signal, cache: 'no-store', credentials: 'omit' });
  if (!res.ok) {
    const err = await errorOf(res);
    if (res.status === 401 && t && !quiet401) onUnauthenticated(err);
    throw err;
  }
  if (raw) return res;
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

export const get = (path, opts) => api('GET', path, undefined, opts);
export const post = (path, body) => api('POST', path, body === undefined ? {} : body);
export const put = (path, body) => api('PUT', path, body);
export const del = (path) => api('DELETE', path);

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? '?' + s : '';
}

export const enc = encodeURIComponent;
