/**
 * SASL logins of a broker connection (connection.ts), as Kafka runs them: SaslHandshake v1 names
 * the mechanism, then SaslAuthenticate v1 carries its messages.
 *
 *   PLAIN           one message: "\0user\0password" (RFC 4616).
 *   SCRAM-SHA-256,  client-first "n,,n=user,r=nonce"; the server answers with its nonce, the salt
 *   SCRAM-SHA-512   and the iteration count; client-final carries the proof; the server's final
 *                   message proves it knew the password too, and is checked (RFC 5802, RFC 7677).
 *
 * The password is used as given (no SASLprep): Kafka's own clients do the same.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { ByteWriter } from './codec.ts';
import { type BrokerConnection, KafkaConnectionError } from './connection.ts';

export interface SaslOptions {
  mechanism: 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512';
  username: string;
  password: string;
}

const SASL_HANDSHAKE = 17;
const SASL_AUTHENTICATE = 36;

/** Logs in on `c`; rejects with a KafkaConnectionError of kind 'authentication' when the broker refuses. */
export async function authenticate(c: BrokerConnection, sasl: SaslOptions): Promise<void> {
  const offered = await c.send(SASL_HANDSHAKE, 1, new ByteWriter().appendString(sasl.mechanism).chunks(), (r) => ({
    errorCode: r.readInt16(),
    mechanisms: r.readNullableArray((x) => x.readString()) ?? [],
  }));
  if (offered.errorCode !== 0)
    throw refused(
      `the broker does not offer SASL ${sasl.mechanism} (it offers ${offered.mechanisms.join(', ') || 'none'})`,
    );
  if (sasl.mechanism === 'PLAIN') {
    await step(c, Buffer.from(`\0${sasl.username}\0${sasl.password}`, 'utf8'));
    return;
  }
  const scram = new ScramClient(sasl.mechanism, sasl.username, sasl.password);
  const serverFirst = await step(c, Buffer.from(scram.first(), 'utf8'));
  const serverFinal = await step(c, Buffer.from(scram.final(serverFirst.toString('utf8')), 'utf8'));
  scram.verify(serverFinal.toString('utf8'));
}

async function step(c: BrokerConnection, message: Buffer): Promise<Buffer> {
  const body = new ByteWriter().appendInt32(message.length).append(message).chunks();
  const res = await c.send(SASL_AUTHENTICATE, 1, body, (r) => ({
    errorCode: r.readInt16(),
    errorMessage: r.readNullableString(),
    authBytes: r.readNullableBytes(),
  }));
  if (res.errorCode !== 0) throw refused(res.errorMessage ?? `Kafka error code ${res.errorCode}`);
  return res.authBytes ?? Buffer.alloc(0);
}

function refused(why: string): KafkaConnectionError {
  return new KafkaConnectionError('authentication', `SASL login refused: ${why}`);
}

/** The client side of one SCRAM exchange. `nonce` is random unless given (tests use RFC 7677's). */
export class ScramClient {
  private readonly hash: 'sha256' | 'sha512';
  private firstBare = '';
  private serverSignature: Buffer | null = null;

  constructor(
    mechanism: 'SCRAM-SHA-256' | 'SCRAM-SHA-512',
    private readonly username: string,
    private readonly password: string,
    private readonly nonce = randomBytes(24).toString('base64'),
  ) {
    this.hash = mechanism === 'SCRAM-SHA-256' ? 'sha256' : 'sha512';
  }

  first(): string {
    const name = this.username.replace(/=/g, '=3D').replace(/,/g, '=2C');
    this.firstBare = `n=${name},r=${this.nonce}`;
    return `n,,${this.firstBare}`;
  }

  final(serverFirst: string): string {
    const a = attributes(serverFirst);
    const iterations = Number(a.get('i'));
    if (!a.get('r')?.startsWith(this.nonce) || !a.has('s') || !Number.isInteger(iterations) || iterations < 1)
      throw refused(`the broker's SCRAM message "${serverFirst}" is not a valid server-first message`);
    const keyBytes = this.hash === 'sha256' ? 32 : 64;
    const salted = pbkdf2Sync(this.password, Buffer.from(a.get('s')!, 'base64'), iterations, keyBytes, this.hash);
    const clientKey = this.hmac(salted, 'Client Key');
    const storedKey = createHash(this.hash).update(clientKey).digest();
    const withoutProof = `c=biws,r=${a.get('r')}`;
    const authMessage = `${this.firstBare},${serverFirst},${withoutProof}`;
    const signature = this.hmac(storedKey, authMessage);
    const proof = Buffer.alloc(clientKey.length);
    for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i] ^ signature[i];
    this.serverSignature = this.hmac(this.hmac(salted, 'Server Key'), authMessage);
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  /** Checks the server-final message: an error, or a signature that does not prove the password. */
  verify(serverFinal: string): void {
    const a = attributes(serverFinal);
    if (a.has('e')) throw refused(`the broker ended the SCRAM exchange: ${a.get('e')}`);
    const v = Buffer.from(a.get('v') ?? '', 'base64');
    const expected = this.serverSignature;
    if (expected === null || v.length !== expected.length || !timingSafeEqual(v, expected))
      throw refused("the broker's SCRAM signature does not match: it does not know this user's password");
  }

  private hmac(key: Buffer, data: string): Buffer {
    return createHmac(this.hash, key).update(data, 'utf8').digest();
  }
}

/** "k=v,k=v" (a value may hold '='). */
function attributes(message: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of message.split(',')) {
    const i = part.indexOf('=');
    if (i > 0) out.set(part.slice(0, i), part.slice(i + 1));
  }
  return out;
}
