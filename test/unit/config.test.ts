import { strict as assert } from 'node:assert';
import { parseConfig, EXAMPLE_CONFIG } from '../../src/core/config';
import { ConfigError } from '../../src/core/errors';

const problemsOf = (text: string) => {
  try {
    parseConfig(text, '/ws/.vscode/tether.json');
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
  assert.fail('expected a ConfigError');
};

describe('config (.vscode/tether.json)', () => {
  it('accepts the documented example and fills defaults', () => {
    const cfg = parseConfig(
      '{"plugins":[{"name":"vllm","command":"python","args":["-m","vllm.entrypoints.openai.api_server"],"cwd":".","env":{},"healthUrl":"http://127.0.0.1:8000/health"}]}',
      'f',
    );
    assert.equal(cfg.plugins[0]!.name, 'vllm');
    const min = parseConfig('{"plugins":[{"name":"a","command":"sleep"}]}', 'f');
    assert.deepEqual(min.plugins[0], { name: 'a', command: 'sleep', args: [], cwd: '.', env: {} });
  });

  it('accepts comments and trailing commas, and the commented example it writes itself', () => {
    const cfg = parseConfig(EXAMPLE_CONFIG, 'f');
    assert.equal(cfg.plugins[0]!.name, 'web');
    parseConfig('// c\n{"plugins":[{"name":"a","command":"x",},],}', 'f');
  });

  it('reports every problem with its JSON path and line', () => {
    const text = `{
  "plugins": [
    {"name": "ok", "command": "x"},
    {"name": "bad name!", "command": 3, "cmd": "y"},
    {"command": "z", "env": {"A": 1}}
  ]
}`;
    const problems = problemsOf(text);
    const byPath = Object.fromEntries(problems.map((p) => [p.path, p]));
    assert.match(byPath['/plugins/1/name']!.message, /letter or digit/);
    assert.equal(byPath['/plugins/1/name']!.line, 4);
    assert.match(byPath['/plugins/1/command']!.message, /string/);
    assert.match(byPath['/plugins/1/cmd']!.message, /unknown property "cmd"/);
    assert.equal(byPath['/plugins/1/cmd']!.line, 4);
    assert.match(byPath['/plugins/2']!.message, /missing required property "name"/);
    assert.match(byPath['/plugins/2/env/A']!.message, /string/);
    assert.equal(problems.length, 5);
  });

  it('reports JSON syntax errors with their line, and duplicates with both places', () => {
    const syntax = problemsOf('{\n "plugins": [\n  {"name": "a" "command": "x"}\n ]\n}');
    assert.equal(syntax[0]!.line, 3);
    assert.match(syntax[0]!.message, /JSON syntax/);
    const dup = problemsOf('{"plugins":[{"name":"a","command":"x"},{"name":"a","command":"y"}]}');
    assert.deepEqual(dup.map((p) => p.path), ['/plugins/1/name']);
    assert.match(dup[0]!.message, /duplicate plugin name "a" \(also \/plugins\/0\)/);
    assert.match(problemsOf('')[0]!.message, /empty|syntax/i);
    assert.match(problemsOf('{}')[0]!.message, /missing required property "plugins"/);
  });

  it('its one-line message names the file, the paths and the fix', () => {
    try {
      parseConfig('{"plugins":[{"name":"a"}]}', '/ws/.vscode/tether.json');
      assert.fail();
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      assert.match(err.oneLine(), /^\/ws\/\.vscode\/tether\.json: \/plugins\/0 \(line 1\): missing required property "command" — Fix the file/);
      assert.equal(err.exitCode, 2);
    }
  });
});
