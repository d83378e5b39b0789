/**
 * Throw-away PKI for TLS integration tests (node-forge).
 *
 * makeTestPki(hostnames) returns a self-signed CA and a leaf certificate signed
 * by it whose subjectAltName carries one DNS entry per hostname. Keys are RSA
 * 2048 (OpenSSL 3 at Node's default security level rejects RSA < 2048); they
 * are generated once per process and reused, and the resulting PKI is cached
 * per distinct hostname list, so repeated calls are cheap.
 */
import { isIP } from "node:net";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import forge from "node-forge";

export interface TestPki {
  /** CA certificate (PEM) — pass as `ca` on the client. */
  ca: string;
  /** Leaf certificate (PEM) for the server. */
  cert: string;
  /** Leaf private key (PEM, PKCS#1) for the server. */
  key: string;
}

interface KeyPair {
  privateKey: forge.pki.rsa.PrivateKey;
  publicKey: forge.pki.rsa.PublicKey;
  privateKeyPem: string;
}

let cachedKeys: { ca: KeyPair; leaf: KeyPair } | undefined;
const pkiCache = new Map<string, TestPki>();

function generateRsa2048(): KeyPair {
  // Native key generation (milliseconds) instead of forge's pure-JS prime
  // search (seconds per key on a slow machine); forge only signs.
  const { privateKey: pem } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicExponent: 0x10001,
    privateKeyEncoding: { type: "pkcs1", format: "pem" },
    publicKeyEncoding: { type: "pkcs1", format: "pem" },
  });
  const privateKey = forge.pki.privateKeyFromPem(pem) as forge.pki.rsa.PrivateKey;
  const publicKey = forge.pki.setRsaPublicKey(privateKey.n, privateKey.e);
  return { privateKey, publicKey, privateKeyPem: pem };
}

function keys(): { ca: KeyPair; leaf: KeyPair } {
  cachedKeys ??= { ca: generateRsa2048(), leaf: generateRsa2048() };
  return cachedKeys;
}

function serialNumber(): string {
  // Positive (top bit clear), non-zero, 16 bytes of hex.
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes.toString("hex");
}

function validity(cert: forge.pki.Certificate): void {
  const now = Date.now();
  const day = 24 * 60 * 60 * 1000;
  cert.validity.notBefore = new Date(now - day);
  cert.validity.notAfter = new Date(now + day);
}

export function makeTestPki(hostnames: string[]): TestPki {
  if (hostnames.length === 0) throw new Error("makeTestPki: at least one hostname is required");
  const cacheKey = JSON.stringify(hostnames);
  const hit = pkiCache.get(cacheKey);
  if (hit) return hit;

  const { ca: caKeys, leaf: leafKeys } = keys();

  const caCert = forge.pki.createCertificate();
  caCert.publicKey = caKeys.publicKey;
  caCert.serialNumber = serialNumber();
  validity(caCert);
  const caSubject = [
    { name: "commonName", value: "dialtone test CA" },
    { name: "organizationName", value: "dialtone tests" },
  ];
  caCert.setSubject(caSubject);
  caCert.setIssuer(caSubject);
  caCert.setExtensions([
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  caCert.sign(caKeys.privateKey, forge.md.sha256.create());

  const leaf = forge.pki.createCertificate();
  leaf.publicKey = leafKeys.publicKey;
  leaf.serialNumber = serialNumber();
  validity(leaf);
  leaf.setSubject([
    { name: "commonName", value: hostnames[0]! },
    { name: "organizationName", value: "dialtone tests" },
  ]);
  leaf.setIssuer(caSubject);
  leaf.setExtensions([
    { name: "basicConstraints", cA: false, critical: true },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    // Also a client certificate, so mTLS tests can present the same leaf.
    { name: "extKeyUsage", serverAuth: true, clientAuth: true },
    // IP literals become IP SANs (type 7), names DNS SANs (type 2).
    { name: "subjectAltName", altNames: hostnames.map((value) => (isIP(value) ? { type: 7, ip: value } : { type: 2, value })) },
    { name: "subjectKeyIdentifier" },
    {
      name: "authorityKeyIdentifier",
      keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes(),
    },
  ]);
  leaf.sign(caKeys.privateKey, forge.md.sha256.create());

  const pki: TestPki = {
    ca: forge.pki.certificateToPem(caCert),
    cert: forge.pki.certificateToPem(leaf),
    key: leafKeys.privateKeyPem,
  };
  pkiCache.set(cacheKey, pki);
  return pki;
}
