import { generateKeyPairSync, randomBytes } from "node:crypto";
import { isIP } from "node:net";
import forge from "node-forge";

/** A CA of its own key and name, so that a "wrong CA" really is one (test/helpers/tls.ts shares one CA key across calls). */
export interface TestCa {
  name: string;
  cert: string;
  key: forge.pki.rsa.PrivateKey;
  forgeCert: forge.pki.Certificate;
}

export interface TestLeaf {
  cert: string;
  key: string;
}

function rsa(): { privateKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey; pem: string } {
  // Native key generation (milliseconds); forge only signs.
  const { privateKey: pem } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    privateKeyEncoding: { type: "pkcs1", format: "pem" },
    publicKeyEncoding: { type: "pkcs1", format: "pem" },
  });
  const privateKey = forge.pki.privateKeyFromPem(pem) as forge.pki.rsa.PrivateKey;
  return { privateKey, publicKey: forge.pki.setRsaPublicKey(privateKey.n, privateKey.e), pem };
}

function base(cert: forge.pki.Certificate): void {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] as number) & 0x7f) | 0x01;
  cert.serialNumber = bytes.toString("hex");
  cert.validity.notBefore = new Date(Date.now() - 86_400_000);
  cert.validity.notAfter = new Date(Date.now() + 86_400_000);
}

export function makeCa(name: string): TestCa {
  const k = rsa();
  const cert = forge.pki.createCertificate();
  cert.publicKey = k.publicKey;
  base(cert);
  const subject = [{ name: "commonName", value: name }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  cert.sign(k.privateKey, forge.md.sha256.create());
  return { name, cert: forge.pki.certificateToPem(cert), key: k.privateKey, forgeCert: cert };
}

/** A leaf signed by `ca` naming `names` (IP literals as IP SANs); good for server and client auth. */
export function makeLeaf(ca: TestCa, names: string[]): TestLeaf {
  const k = rsa();
  const cert = forge.pki.createCertificate();
  cert.publicKey = k.publicKey;
  base(cert);
  cert.setSubject([{ name: "commonName", value: names[0] ?? "client" }]);
  cert.setIssuer(ca.forgeCert.subject.attributes);
  cert.setExtensions([
    { name: "basicConstraints", cA: false, critical: true },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", serverAuth: true, clientAuth: true },
    ...(names.length > 0 ? [{ name: "subjectAltName", altNames: names.map((value) => (isIP(value) ? { type: 7, ip: value } : { type: 2, value })) }] : []),
  ]);
  cert.sign(ca.key, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: k.pem };
}
