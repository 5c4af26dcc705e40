// The console's only way to the server: the public REST API, with a session.
//
// Signing in trades the credential the user pastes (an API token) or the browser's client
// certificate for a session (POST /v1/auth/token), then forgets the credential. The
// short-lived access token lives in memory only; the refresh token is kept in this tab's
// sessionStorage so that a reload does not sign the user out, and it is rotated by the
// server on every use. Every request goes through the same authorization as the CLI's.

const REFRESH_KEY = 'arca.console.refresh';
let access = null;
let accessExpires = 0;
let refreshing = null;

/** An error answer of the API: status, code, message and the field it names. */
export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || 'error';
    this.field = e.field || null;
  }
}

/** An answer 202 needs_approval: the operation waits for approvers. */
export class NeedsApproval extends Error {
  constructor(body) {
    super(body.error.message);
    this.requestId = body.error.approval_request_id;
  }
}

async function decode(r) {
  const text = await r.text();
  if (!text) return null;
  try { return JSON.parse(text); } catch { return text; }
}

function keep(tokens) {
  access = tokens.access_token;
  accessExpires = Date.now() + (tokens.expires_in - 20) * 1000;
  sessionStorage.setItem(REFRESH_KEY, tokens.refresh_token);
}

function forget() {
  access = null;
  accessExpires = 0;
  sessionStorage.removeItem(REFRESH_KEY);
}

/** True if this tab holds a session (it may still have expired on the server). */
export function hasSession() {
  return !!access || !!sessionStorage.getItem(REFRESH_KEY);
}

/**
 * Starts a session. With `credential` empty the server authenticates the TLS client
 * certificate the browser presented.
 */
export async function signIn(credential) {
  const headers = { 'content-type': 'application/json', accept: 'application/json' };
  if (credential) headers.authorization = `Bearer ${credential}`;
  const r = await fetch('/v1/auth/token', {
    method: 'POST', headers, body: JSON.stringify({ grant_type: 'credential' }),
    credentials: 'same-origin', cache: 'no-store',
  });
  const body = await decode(r);
  if (!r.ok) throw new ApiError(r.status, body);
  keep(body);
}

// One refresh at a time: a refresh token works once, and presenting a spent one ends the
// session on the server.
function refresh() {
  if (!refreshing) {
    refreshing = (async () => {
      const rt = sessionStorage.getItem(REFRESH_KEY);
      if (!rt) throw new ApiError(401, { error: { code: 'unauthenticated', message: 'signed out' } });
      const r = await fetch('/v1/auth/token', {
        method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ grant_type: 'refresh_token', refresh_token: rt }), cache: 'no-store',
      });
      const body = await decode(r);
      if (!r.ok) { forget(); throw new ApiError(r.status, body); }
      keep(body);
    })().finally(() => { refreshing = null; });
  }
  return refreshing;
}

/** Ends the session on the server and here. */
export async function signOut() {
  try { if (hasSession()) await call('POST', '/v1/auth/logout'); } catch { /* already ended */ }
  forget();
}

/**
 * Calls the API. Resolves with the decoded JSON; rejects with ApiError, or NeedsApproval
 * for a 202 needs_approval answer. `opts.anonymous` sends no credential.
 */
export async function call(method, path, body, opts = {}) {
  for (let attempt = 0; attempt < 2; attempt++) {
    const headers = { accept: 'application/json' };
    if (!opts.anonymous) {
      if (!access || Date.now() > accessExpires) await refresh();
      headers.authorization = `Bearer ${access}`;
    }
    // Changes always go as JSON: the server refuses a change that only the browser's
    // client certificate authenticates unless it is (its cross-site guard).
    if (body !== undefined || method !== 'GET') headers['content-type'] = 'application/json';
    const r = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store', credentials: 'same-origin',
    });
    const out = await decode(r);
    if (r.status === 401 && !opts.anonymous && attempt === 0) {
      access = null;
      continue;
    }
    if (r.status === 202 && out && out.error && out.error.code === 'needs_approval') {
      throw new NeedsApproval(out);
    }
    if (!r.ok) throw new ApiError(r.status, out);
    return out;
  }
  throw new ApiError(401, { error: { code: 'unauthenticated', message: 'the session has ended; sign in again' } });
}

/** Builds a path with a query string from the non-empty values of `params`. */
export function withQuery(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

/** A key reference for a path segment (names may contain '/'). */
export function seg(s) {
  return encodeURIComponent(s);
}
