import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
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

describe('config: docker and conda plugins', () => {
  it('accepts a docker plugin without "command" (command is then "") and a conda plugin', () => {
    const cfg = parseConfig(
      `{"plugins":[
        {"name":"db","docker":{"image":"postgres:16","ports":["5432:5432","127.0.0.1:8080:80","53/udp"],"env":{"POSTGRES_PASSWORD":"x"},"volumes":["./data:/var/lib/postgresql/data","cache:/cache:ro"]}},
        {"name":"web","docker":{"image":"nginx"},"command":"nginx","args":["-g","daemon off;"]},
        {"name":"train","command":"python","args":["train.py"],"conda":"ml"}
      ]}`,
      'f',
    );
    assert.deepEqual(cfg.plugins[0], {
      name: 'db',
      command: '',
      args: [],
      cwd: '.',
      env: {},
      docker: { image: 'postgres:16', ports: ['5432:5432', '127.0.0.1:8080:80', '53/udp'], env: { POSTGRES_PASSWORD: 'x' }, volumes: ['./data:/var/lib/postgresql/data', 'cache:/cache:ro'] },
    });
    assert.equal(cfg.plugins[1]!.command, 'nginx');
    assert.equal(cfg.plugins[2]!.conda, 'ml');
  });

  it('a plugin with neither "command" nor "docker" gets one problem, not one per alternative', () => {
    const problems = problemsOf('{"plugins":[{"name":"a","args":["x"]}]}');
    assert.deepEqual(problems.map((p) => [p.path, p.message]), [['/plugins/0', 'missing required property "command"']]);
  });

  it('reports problems inside "docker" and "conda" with their paths', () => {
    const text = `{"plugins":[
  {"name":"a","docker":{"ports":["80:x"],"volumes":["novolume"],"pull":true}},
  {"name":"b","command":"x","conda":""},
  {"name":"c","docker":"nginx"}
]}`;
    const byPath = Object.fromEntries(problemsOf(text).map((p) => [p.path, p]));
    assert.match(byPath['/plugins/0/docker']!.message, /missing required property "image"/);
    assert.equal(byPath['/plugins/0/docker']!.line, 2);
    assert.match(byPath['/plugins/0/docker/ports/0']!.message, /pattern/);
    assert.match(byPath['/plugins/0/docker/volumes/0']!.message, /pattern/);
    assert.match(byPath['/plugins/0/docker/pull']!.message, /unknown property "pull"/);
    assert.match(byPath['/plugins/1/conda']!.message, /fewer than 1/);
    assert.match(byPath['/plugins/2/docker']!.message, /object/);
    assert.equal(byPath['/plugins/2/docker']!.line, 4);
  });

  it('media/tether.schema.json (what VS Code validates with) is the same as the core schema', () => {
    const root = path.resolve(__dirname, '..', '..');
    assert.equal(fs.readFileSync(path.join(root, 'media/tether.schema.json'), 'utf8'), fs.readFileSync(path.join(root, 'src/core/tether.schema.json'), 'utf8'));
  });
});
