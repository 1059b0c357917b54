import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { type AddressInfo, createServer } from 'node:net';
import { type Message, PubSub } from '@google-cloud/pubsub';
import { afterEach, describe, expect, inject, it } from 'vitest';
import {
  EMULATOR_JVM_OPTIONS,
  findPubSubEmulator,
  PubSubEmulatorMissingError,
  PubSubEmulatorPortInUseError,
  startPubSubEmulator,
} from '#local/pubsub/emulator.js';

const PROJECT = 'batchwire-test';
const saved = { ...process.env };

afterEach(() => {
  for (const name of [
    'PATH',
    'JAVA_HOME',
    'CLOUDSDK_ROOT_DIR',
    'PUBSUB_EMULATOR_HOST',
    'CLOUD_PUBSUB_EMULATOR_OPTS',
  ] as const) {
    if (saved[name] === undefined) delete process.env[name];
    else process.env[name] = saved[name];
  }
});

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/', timeout: 1_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.end();
  });
}

describe('Pub/Sub emulator (global setup)', () => {
  it('is shared with the test workers through PUBSUB_EMULATOR_HOST and inject()', () => {
    expect(process.env.PUBSUB_EMULATOR_HOST).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(inject('pubsubHost')).toBe(process.env.PUBSUB_EMULATOR_HOST);
  });

  it('carries a message with attributes from a real publisher to a real subscriber', async () => {
    // Arrange
    const pubsub = new PubSub({ projectId: PROJECT });
    const [topic] = await pubsub.createTopic(`emulator-${randomUUID().slice(0, 8)}`);
    const [subscription] = await topic.createSubscription(`emulator-sub-${randomUUID().slice(0, 8)}`);
    const received = new Promise<Message>((resolve) => {
      subscription.once('message', (message: Message) => {
        message.ack();
        resolve(message);
      });
    });

    // Act
    await topic.publishMessage({ data: Buffer.from('hello'), attributes: { Type: 'TEST' } });
    const message = await received;
    await subscription.close();
    await pubsub.close();

    // Assert
    expect(message.data.toString()).toBe('hello');
    expect(message.attributes).toEqual({ Type: 'TEST' });
  });

  it('rejects topic names shorter than 3 characters, as the emulator (and Pub/Sub) do', async () => {
    const pubsub = new PubSub({ projectId: PROJECT });
    await expect(pubsub.createTopic('ab')).rejects.toThrow();
    await pubsub.close();
  });
});

describe('startPubSubEmulator', () => {
  it('reuses the emulator named by PUBSUB_EMULATOR_HOST; stopping it is a no-op', async () => {
    // Arrange
    const host = process.env.PUBSUB_EMULATOR_HOST as string;

    // Act
    const emulator = await startPubSubEmulator();
    await emulator.stop();

    // Assert
    expect(emulator.host).toBe(host);
    expect(await answers(emulator.port)).toBe(true);
  });

  it('starts its own emulator on a free port, answers once started, and frees the port on stop', async () => {
    // Arrange
    delete process.env.PUBSUB_EMULATOR_HOST;

    // Act
    const emulator = await startPubSubEmulator();
    const upAfterStart = await answers(emulator.port);
    await emulator.stop();
    const upAfterStop = await answers(emulator.port);

    // Assert
    expect(emulator.host).toBe(`127.0.0.1:${emulator.port}`);
    expect(upAfterStart).toBe(true);
    expect(upAfterStop).toBe(false);
  });

  it('reports a port it was given that is taken, and leaves no emulator behind', async () => {
    // Arrange: a plain TCP server holds the port (it answers no HTTP, so nothing mistakes it for an emulator).
    delete process.env.PUBSUB_EMULATOR_HOST;
    const occupier = createServer();
    await new Promise<void>((resolve) => occupier.listen(0, '127.0.0.1', resolve));
    const { port } = occupier.address() as AddressInfo;

    // Act
    const started = startPubSubEmulator({ port });

    // Assert: the error Node's own listen() gives (what the platform turns into its flag hint).
    try {
      await expect(started).rejects.toThrow(PubSubEmulatorPortInUseError);
      await expect(started).rejects.toMatchObject({ code: 'EADDRINUSE', port });
    } finally {
      await new Promise((resolve) => occupier.close(resolve));
    }
    expect(await answers(port)).toBe(false);
  });

  it('runs the JVM with its small-footprint options unless CLOUD_PUBSUB_EMULATOR_OPTS says otherwise', async () => {
    // Arrange
    delete process.env.PUBSUB_EMULATOR_HOST;
    delete process.env.CLOUD_PUBSUB_EMULATOR_OPTS;
    const javaCommandLine = (port: number) =>
      execFileSync('ps', ['-e', '-o', 'args='], { encoding: 'utf8' })
        .split('\n')
        .find((line) => line.includes('cloud-pubsub-emulator') && line.includes(`--port=${port}`)) ?? '';

    // Act
    const byDefault = await startPubSubEmulator();
    const defaultCommand = javaCommandLine(byDefault.port);
    await byDefault.stop();
    process.env.CLOUD_PUBSUB_EMULATOR_OPTS = '-Xmx300m';
    const chosen = await startPubSubEmulator();
    const chosenCommand = javaCommandLine(chosen.port);
    await chosen.stop();

    // Assert
    expect(defaultCommand).toContain(`java ${EMULATOR_JVM_OPTIONS} -jar`);
    expect(chosenCommand).toContain('java -Xmx300m -jar');
    expect(chosenCommand).not.toContain('-XX:TieredStopAtLevel=1');
  });

  it('finds the emulator inside the installed gcloud SDK', () => {
    expect(findPubSubEmulator()).toMatch(/platform\/pubsub-emulator\/bin\/cloud-pubsub-emulator$/);
  });

  it('explains how to install what is missing when Java cannot be found', () => {
    // Arrange: no PATH (so neither java nor gcloud), no JAVA_HOME.
    process.env.PATH = '';
    delete process.env.JAVA_HOME;

    // Act / Assert
    expect(() => findPubSubEmulator()).toThrow(PubSubEmulatorMissingError);
    expect(() => findPubSubEmulator()).toThrow(
      /gcloud components install pubsub-emulator.*google-cloud-cli-pubsub-emulator.*Java 17/s,
    );
  });
});
