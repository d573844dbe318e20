// Reading a JWT's payload (without verifying it: only the server can) and
// choosing when to refresh it. Pure.

/**
 * The payload of a JWT, or null when `token` is not a JWT with a JSON object payload.
 * The signature is NOT checked.
 *
 * @param {string} token
 * @returns {Record<string, unknown> | null}
 */
export function decodeJwtPayload(token) {
  const parts = token.split(".");
  if (parts.length !== 3 || !parts[1]) return null;
  try {
    const base64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
    const binary = atob(padded);
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    const payload = JSON.parse(new TextDecoder().decode(bytes));
    return payload !== null && typeof payload === "object" && !Array.isArray(payload)
      ? payload
      : null;
  } catch {
    return null;
  }
}

/**
 * The token's `exp` in milliseconds since the epoch, or null if it has none.
 *
 * @param {string} token
 * @returns {number | null}
 */
export function tokenExpiry(token) {
  const exp = decodeJwtPayload(token)?.exp;
  return typeof exp === "number" && Number.isFinite(exp) ? exp * 1000 : null;
}

/**
 * How long to wait before refreshing a token that expires at `expiresAt`:
 * a minute before expiry, or at three quarters of the remaining life for
 * short-lived tokens, whichever comes first. Never negative.
 *
 * @param {number} expiresAt ms since the epoch
 * @param {number} now ms since the epoch
 * @param {number} [marginMs] the most to keep in reserve (default 60 s)
 * @returns {number}
 */
export function refreshDelay(expiresAt, now, marginMs = 60_000) {
  const remaining = expiresAt - now;
  if (remaining <= 0) return 0;
  return Math.max(0, remaining - Math.min(marginMs, remaining / 4));
}
