import { exportJWK, generateKeyPair, generateSecret } from "jose";

/** A fresh ES256 private JWK (JSON) with key id `kid`, for TOKEN_SIGNING_KEY. */
export async function generateSigningKey(kid: string): Promise<string> {
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  return JSON.stringify({ ...(await exportJWK(privateKey)), kid, alg: "ES256" });
}

/** A fresh HS256 secret JWK (JSON, 32 bytes) with key id `kid`, for ADMISSION_TOKEN_KEY. */
export async function generateAdmissionKey(kid: string): Promise<string> {
  const secret = await generateSecret("HS256", { extractable: true });
  return JSON.stringify({ ...(await exportJWK(secret)), kid, alg: "HS256" });
}
