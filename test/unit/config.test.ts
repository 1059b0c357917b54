import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Document, parseDocument } from 'yaml';
import { configPath, DEFAULT_CONFIG_FILE, parseConfig } from '#shared/config/load.js';
import { ConfigError } from '#shared/runtime/errors.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const SHIPPED = readFileSync(join(ROOT, 'batchwire.yaml'), 'utf8');

/** The shipped config as a YAML document, to break one key at a time. */
function shipped(): Document {
  return parseDocument(SHIPPED);
}

/** Runs parseConfig on a document expected to be rejected and returns the ConfigError. */
function rejection(text: string): ConfigError {
  try {
    parseConfig(text, 'test.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('parseConfig accepted an invalid config');
}

describe('parseConfig', () => {
  it('accepts the shipped batchwire.yaml and fills in the defaults', () => {
    // Act
    const config = parseConfig(SHIPPED);

    // Assert
    expect(Object.keys(config.products)).toEqual(['mlops-template']);
    const product = config.products['mlops-template'];
    expect(product?.clients).toEqual(['acme', 'globex']);
    expect(product?.inference.maxTasks).toBe(8);
    // Keys the file leaves out come from the schema's defaults.
    expect(product?.inference.cpuMilli).toBe(2000);
    expect(product?.inference.memoryMib).toBe(2048);
    expect(product?.inference.commands).toEqual([]);
    expect(product?.inference.env).toEqual({});
    expect(product?.flows.train?.params).toEqual({});
    expect(Object.keys(product?.flows ?? {})).toEqual(['train', 'metadata']);
  });

  it('fills maxEventAgeSeconds and local when the file leaves them out', () => {
    // Arrange
    const doc = shipped();
    doc.delete('maxEventAgeSeconds');
    doc.delete('local');

    // Act
    const config = parseConfig(doc.toString());

    // Assert
    // Below Eventarc's 24 h retry window, so that the age check can fire before Eventarc gives up.
    expect(config.maxEventAgeSeconds).toBe(82_800);
    expect(config.maxEventAgeSeconds).toBeLessThan(24 * 60 * 60);
    expect(config.local).toEqual({ images: {} });
  });

  it('names products.mlops-template.inference.maxTasks when it is out of range', () => {
    // Arrange
    const doc = shipped();
    doc.setIn(['products', 'mlops-template', 'inference', 'maxTasks'], 0);

    // Act
    const error = rejection(doc.toString());

    // Assert
    expect(error.message).toContain('test.yaml: invalid config');
    expect(error.message).toMatch(/^ {2}products\.mlops-template\.inference\.maxTasks: .+/m);
    expect(error.retryable).toBe(false);
  });

  it('names a maxRunDuration a Batch job could not carry (more than nine decimals)', () => {
    // Arrange
    const doc = shipped();
    doc.setIn(['products', 'mlops-template', 'inference', 'maxRunDuration'], '1.0000000001s');

    // Act
    const error = rejection(doc.toString());

    // Assert
    expect(error.message).toMatch(
      /^ {2}products\.mlops-template\.inference\.maxRunDuration: .*duration in seconds/m,
    );
  });

  it('names the position of a bad client id and says what an id must look like', () => {
    // Arrange
    const doc = shipped();
    doc.setIn(['products', 'mlops-template', 'clients', 1], 'Globex_Corp');

    // Act
    const error = rejection(doc.toString());

    // Assert
    expect(error.message).toMatch(/products\.mlops-template\.clients\.1: client id must match/);
  });

  it('rejects an unknown key (the schema is strict) and names it', () => {
    // Arrange
    const doc = shipped();
    doc.setIn(['products', 'mlops-template', 'inference', 'maxTask'], 4);

    // Act
    const error = rejection(doc.toString());

    // Assert
    expect(error.message).toMatch(/products\.mlops-template\.inference: .*"maxTask"/);
  });

  it('rejects an unknown top-level key and names it', () => {
    // Arrange
    const doc = shipped();
    doc.set('buckets', 'typo');

    // Act
    const error = rejection(doc.toString());

    // Assert
    expect(error.message).toMatch(/"buckets"/);
  });

  it('names bucket when it is missing', () => {
    // Arrange
    const doc = shipped();
    doc.delete('bucket');

    // Act
    const error = rejection(doc.toString());

    // Assert
    expect(error.message).toMatch(/^ {2}bucket: .+/m);
  });

  it('says the file is not valid YAML when it does not parse', () => {
    // Act
    const error = rejection('project: batchwire-local\nproducts: [unclosed\n');

    // Assert
    expect(error.message).toMatch(/^test\.yaml: not valid YAML: /);
  });
});

describe('configPath', () => {
  it('honours BATCHWIRE_CONFIG, relative to the working directory', () => {
    expect(configPath({ BATCHWIRE_CONFIG: 'conf/other.yaml' }, '/srv/app')).toBe('/srv/app/conf/other.yaml');
    expect(configPath({ BATCHWIRE_CONFIG: '/etc/batchwire.yaml' }, '/srv/app')).toBe('/etc/batchwire.yaml');
  });

  it('falls back to batchwire.yaml in the working directory', () => {
    expect(configPath({}, '/srv/app')).toBe(join('/srv/app', DEFAULT_CONFIG_FILE));
    expect(configPath({ BATCHWIRE_CONFIG: '' }, '/srv/app')).toBe('/srv/app/batchwire.yaml');
  });
});
