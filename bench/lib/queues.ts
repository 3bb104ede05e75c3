/**
 * The Queues runtime's side of a consumer invocation, in Node: a message batch
 * whose acks and retries are recorded, and a producer binding that counts what
 * is sent to it. Enough to call a queue handler as Queues calls it.
 */

/** A delivered message; remembers whether the handler acked or retried it. */
export class DeliveredMessage implements Message<unknown> {
  readonly timestamp = new Date();
  outcome: "acked" | "retried" | undefined;

  constructor(
    readonly id: string,
    readonly body: unknown,
    readonly attempts: number,
  ) {}

  ack(): void {
    this.outcome ??= "acked";
  }

  retry(): void {
    this.outcome ??= "retried";
  }
}

/** One batch of `bodies` from `queue`, delivered for the `attempts`th time. */
export class DeliveredBatch implements MessageBatch<unknown> {
  readonly messages: DeliveredMessage[];
  readonly metadata = { metrics: { backlogCount: 0, backlogBytes: 0 } };

  constructor(
    readonly queue: string,
    bodies: unknown[],
    attempts = 1,
  ) {
    this.messages = bodies.map((body) => new DeliveredMessage(crypto.randomUUID(), body, attempts));
  }

  ackAll(): void {
    for (const message of this.messages) message.ack();
  }

  retryAll(): void {
    for (const message of this.messages) message.retry();
  }
}

/** A producer binding that keeps count of the messages sent to it. */
export class CountingQueue implements Queue<unknown> {
  sent = 0;

  async metrics(): Promise<QueueMetrics> {
    return { backlogCount: 0, backlogBytes: 0 };
  }

  async send(): Promise<QueueSendResponse> {
    this.sent++;
    return { metadata: { metrics: { backlogCount: 0, backlogBytes: 0 } } };
  }

  async sendBatch(messages: Iterable<MessageSendRequest<unknown>>): Promise<QueueSendBatchResponse> {
    this.sent += [...messages].length;
    return { metadata: { metrics: { backlogCount: 0, backlogBytes: 0 } } };
  }
}
