import { strict as assert } from 'node:assert';
import { DEFAULT_STOP_GRACE_MS, pluginGraceMs, resolveGraceMs } from '../../src/core/grace';

describe('stop grace resolver', () => {
  it('an explicit choice, then the plugin, then the setting, then the default', () => {
    assert.equal(resolveGraceMs({ overrideMs: 0, pluginMs: 3000, settingMs: 200 }), 0);
    assert.equal(resolveGraceMs({ pluginMs: 3000, settingMs: 200 }), 3000);
    assert.equal(resolveGraceMs({ pluginMs: 0, settingMs: 200 }), 0, "a plugin's 0 is a choice, not an absence");
    assert.equal(resolveGraceMs({ pluginMs: null, settingMs: 200 }), 200);
    assert.equal(resolveGraceMs({ settingMs: 200 }), 200);
    assert.equal(resolveGraceMs({}), DEFAULT_STOP_GRACE_MS);
    assert.equal(DEFAULT_STOP_GRACE_MS, 5000);
  });
  it('ignores values that are not finite numbers >= 0', () => {
    assert.equal(resolveGraceMs({ overrideMs: NaN, pluginMs: -1, settingMs: Infinity }), DEFAULT_STOP_GRACE_MS);
    assert.equal(resolveGraceMs({ overrideMs: undefined, pluginMs: undefined, settingMs: 700 }), 700);
  });
  it('a cap bounds whatever was chosen', () => {
    assert.equal(resolveGraceMs({ pluginMs: 30_000, settingMs: 200, capMs: 2000 }), 2000);
    assert.equal(resolveGraceMs({ pluginMs: 500, settingMs: 200, capMs: 2000 }), 500);
    assert.equal(resolveGraceMs({ capMs: 1000 }), 1000);
  });
  it('converts a plugin stopGraceSeconds', () => {
    assert.equal(pluginGraceMs(undefined), undefined);
    assert.equal(pluginGraceMs(0.5), 500);
  });
});
