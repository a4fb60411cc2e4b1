/**
 * A long-lived broker link for the api: reconnects in the background and
 * hands out its channel while connected. Used for readiness and the
 * operators' queue view, never on the purchase path.
 */
import type { Logger } from '../log.js';
import { AppError } from '../errors.js';
import { keepConnected, type Channel, type ConfirmChannel, type Connection } from './amqp.js';
import { assertTopology, type Topology } from './topology.js';

export class AmqpLink {
  private conn?: Connection;
  private ch?: Channel;
  private pub?: Promise<ConfirmChannel>;
  private stopping = false;
  private loop?: Promise<void>;

  constructor(
    private readonly url: string,
    private readonly name: string,
    private readonly topology: Topology,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.loop ??= this.run();
  }

  get connected(): boolean {
    return this.ch !== undefined;
  }

  channel(): Channel {
    if (!this.ch) throw new AppError('UNAVAILABLE', 'the message broker is unreachable', undefined, { 'Retry-After': '1' });
    return this.ch;
  }

  /** A confirm channel on the link's connection, for the operators' rare publishes (opened on first use, again after it closed). */
  confirmChannel(): Promise<ConfirmChannel> {
    const conn = this.conn;
    if (!conn || !this.ch) return Promise.reject(new AppError('UNAVAILABLE', 'the message broker is unreachable', undefined, { 'Retry-After': '1' }));
    this.pub ??= conn.createConfirmChannel().then((pub) => {
      pub.on('error', () => {});
      pub.on('close', () => (this.pub = undefined));
      return pub;
    }, (err: unknown) => {
      this.pub = undefined;
      throw err;
    });
    return this.pub;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.conn?.close().catch(() => {});
    await this.loop;
  }

  private run(): Promise<void> {
    return keepConnected({
      url: this.url,
      name: this.name,
      stopping: () => this.stopping,
      onConnection: (conn) => {
        this.conn = conn;
        this.pub = undefined;
        if (!conn) this.ch = undefined;
      },
      onLost: (err) => this.log.warn({ err }, 'broker link down'),
      session: async (s) => {
        await this.openChannel();
        s.established();
        await s.closed;
      },
    });
  }

  private async openChannel(): Promise<void> {
    const ch = await this.conn!.createChannel();
    ch.on('error', () => {});
    // A failed passive check closes the channel; open a fresh one.
    ch.on('close', () => {
      if (this.ch === ch) this.ch = undefined;
      if (!this.stopping && this.conn) this.openChannel().catch(() => {});
    });
    await assertTopology(ch, this.topology);
    this.ch = ch;
  }
}
