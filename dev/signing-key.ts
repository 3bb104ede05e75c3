import { exportJWK, generateKeyPair } from "jose";

/** A fresh ES256 private JWK (JSON) with key id `kid`, for TOKEN_SIGNING_KEY. */
export async function generateSigningKey(kid: string): Promise<string> {
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  return JSON.stringify({ ...(await exportJWK(privateKey)), kid, alg: "ES256" });
}
