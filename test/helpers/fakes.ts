import type { ObjectStore } from '#shared/clients/ports.js';

/**
 * An {@link ObjectStore} in memory, for unit tests of the cores: `createIfAbsent` is the
 * if-generation-match=0 create (false when the name exists), and `list` reports sizes in bytes,
 * as GCS does. `objects` is the bucket's content, for a test to arrange and inspect; `reads`
 * the names read, in order.
 */
export class MemoryStore implements ObjectStore {
  readonly objects = new Map<string, string>();
  readonly reads: string[] = [];

  async createIfAbsent(name: string, body: string): Promise<boolean> {
    if (this.objects.has(name)) return false;
    this.objects.set(name, body);
    return true;
  }

  async readText(name: string): Promise<string | undefined> {
    this.reads.push(name);
    return this.objects.get(name);
  }

  async list(prefix: string): Promise<Array<{ name: string; size: number }>> {
    return [...this.objects]
      .filter(([name]) => name.startsWith(prefix))
      .map(([name, body]) => ({ name, size: Buffer.byteLength(body) }));
  }
}
