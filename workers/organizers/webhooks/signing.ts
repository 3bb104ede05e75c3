/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com/): the
 * `webhook-signature` header is `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`
 * under the bytes the `whsec_` secret encodes, one per secret, space-separated
 * (a rotated-out secret keeps signing through its grace period). WebCrypto
 * directly: the `standardwebhooks` package signs with a synchronous pure-JS
 * SHA-256 and one secret per instance, where the runtime's own HMAC is a few
 * lines and handles several.
 */

const SECRET_PREFIX = "whsec_";

/** A new endpoint secret: `whsec_` and base64 of 32 random bytes (the size Standard Webhooks recommends). */
export function newWebhookSecret(): string {
  return `${SECRET_PREFIX}${toBase64(crypto.getRandomValues(new Uint8Array(32)))}`;
}

/** The Standard Webhooks headers of one attempt: the same id every time, the time of this attempt, a signature per secret. */
export async function signWebhook(secrets: string[], webhookId: string, timestampSeconds: number, body: string): Promise<Record<string, string>> {
  const content = new TextEncoder().encode(`${webhookId}.${timestampSeconds}.${body}`);
  const signatures = await Promise.all(
    secrets.map(async (secret) => {
      const key = await crypto.subtle.importKey("raw", secretBytes(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
      return `v1,${toBase64(new Uint8Array(await crypto.subtle.sign("HMAC", key, content)))}`;
    }),
  );
  return { "webhook-id": webhookId, "webhook-timestamp": String(timestampSeconds), "webhook-signature": signatures.join(" ") };
}

function secretBytes(secret: string): Uint8Array<ArrayBuffer> {
  if (!secret.startsWith(SECRET_PREFIX)) throw new Error("a webhook secret starts with whsec_");
  return Uint8Array.from(atob(secret.slice(SECRET_PREFIX.length)), (c) => c.charCodeAt(0));
}

function toBase64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}
