// The config validator is compiled ahead of time (scripts/gen-config-validator.mjs): the committed
// module must be exactly what the script makes of the schema now, and validate like Ajv does.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv, { type ValidateFunction } from 'ajv';
import { validate as generated } from '../../src/core/configValidator.generated';
import schema from '../../src/core/tether.schema.json';

const root = path.resolve(__dirname, '..', '..');
const validate = generated as ValidateFunction;

describe('config validator (compiled ahead of time)', () => {
  it('src/core/configValidator.generated.ts is what scripts/gen-config-validator.mjs makes of the schema now', async () => {
    const gen = (await import(path.join(root, 'scripts', 'gen-config-validator.mjs'))) as { configValidatorSource: () => string; VALIDATOR_FILE: string };
    assert.equal(fs.readFileSync(gen.VALIDATOR_FILE, 'utf8'), gen.configValidatorSource(), 'stale: run `node scripts/gen-config-validator.mjs` (npm run build does)');
  });

  it('answers like Ajv compiling the schema at run time, errors included', async () => {
    const gen = (await import(path.join(root, 'scripts', 'gen-config-validator.mjs'))) as { AJV_OPTIONS: object };
    const live = new Ajv(gen.AJV_OPTIONS).compile(schema);
    const cases: unknown[] = [
      { plugins: [{ name: 'a', command: 'x' }] },
      { plugins: [{ name: 'a', docker: { image: 'busybox', ports: ['8080:80'], volumes: ['./d:/data:ro'] } }], hosts: ['me@box:22'] },
      { plugins: [{ name: '-bad', command: '' }] },
      { plugins: [{ name: 'a' }] },
      { plugins: [{ name: 'a', command: 'x', extra: 1 }], hosts: ['h', 'h'] },
      { plugins: [{ name: 'a', command: 'x', host: '-oProxyCommand=x', stopGraceSeconds: 601, healthUrl: 'ftp://x' }] },
      { plugins: 'no' },
      {},
      [],
    ];
    for (const c of cases) {
      const ok = live(c);
      assert.equal(validate(c), ok, JSON.stringify(c));
      assert.deepEqual(validate.errors ?? null, live.errors ?? null, JSON.stringify(c));
    }
  });
});
