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

describe('config: remote (SSH) plugins', () => {
  it('accepts "host" as an alias or user@host:port, keeping it on the spec', () => {
    const cfg = parseConfig(
      `{"plugins":[
        {"name":"train","command":"python","args":["train.py"],"host":"gpu-box"},
        {"name":"srv","command":"sleep","args":["300"],"host":"me@10.0.0.5:2222","cwd":"work"},
        {"name":"v6","command":"true","host":"me@[::1]:22"}
      ]}`,
      'f',
    );
    assert.deepEqual(cfg.plugins[0], { name: 'train', command: 'python', args: ['train.py'], cwd: '.', env: {}, host: 'gpu-box' });
    assert.equal(cfg.plugins[1]!.host, 'me@10.0.0.5:2222');
    assert.equal(cfg.plugins[1]!.cwd, 'work');
    assert.equal(cfg.plugins[2]!.host, 'me@[::1]:22');
    assert.equal(parseConfig('{"plugins":[{"name":"a","command":"x"}]}', 'f').plugins[0]!.host, undefined);
  });

  it('rejects an empty host, shell characters, a non-string, a host without "command", and host with docker or conda', () => {
    const text = `{"plugins":[
  {"name":"a","command":"x","host":""},
  {"name":"b","command":"x","host":"h; rm -rf ~"},
  {"name":"c","command":"x","host":22},
  {"name":"d","host":"h"},
  {"name":"e","command":"x","host":"h","conda":"ml"}
]}`;
    const byPath = Object.fromEntries(problemsOf(text).map((p) => [p.path, p]));
    assert.match(byPath['/plugins/0/host']!.message, /alias from ~\/\.ssh\/config/);
    assert.match(byPath['/plugins/1/host']!.message, /alias from ~\/\.ssh\/config or user@host:port/);
    assert.equal(byPath['/plugins/1/host']!.line, 3);
    assert.match(byPath['/plugins/2/host']!.message, /string/);
    assert.match(byPath['/plugins/3']!.message, /missing required property "command"/);
    // Combination problems are reported once the schema is satisfied.
    const combo = problemsOf('{"plugins":[{"name":"e","command":"x","host":"h","conda":"ml"},{"name":"f","host":"h","docker":{"image":"i"}}]}');
    assert.deepEqual(
      combo.map((p) => [p.path, p.message]),
      [
        ['/plugins/0/host', '"host" cannot be combined with "conda" (remote plugins run a command on the SSH host)'],
        ['/plugins/1/host', '"host" cannot be combined with "docker" (remote plugins run a command on the SSH host)'],
      ],
    );
  });

  it('takes extra SSH hosts to watch, and rejects hostile or duplicate ones', () => {
    assert.deepEqual(parseConfig('{"plugins":[],"hosts":["gpu-box","me@10.0.0.5:2222"]}', 'f').hosts, ['gpu-box', 'me@10.0.0.5:2222']);
    assert.deepEqual(parseConfig('{"plugins":[]}', 'f').hosts, []);
    assert.match(problemsOf('{"plugins":[],"hosts":["a;rm -rf /"]}')[0]!.path, /^\/hosts\/0$/);
    assert.match(problemsOf('{"plugins":[],"hosts":["a","a"]}')[0]!.message, /duplicate/);
  });
});

describe('config: what the launchers refuse is refused here, before any intent (#13 item 10)', () => {
  it('a NUL byte in command, args, cwd or env; "=" in an env name; remote env names the shell cannot assign; a remote command starting with "-"', () => {
    const text = JSON.stringify({
      plugins: [
        { name: 'a', command: 'echo', args: ['ok', 'a\u0000b'] },
        { name: 'b', command: 'x\u0000', cwd: 'd\u0000', env: { 'A=B': '1', OK: 'v\u0000' } },
        { name: 'c', host: 'h', command: 'sleep', args: ['1'], env: { 'MY-VAR': '1', '9X': '2', GOOD_1: '3' } },
        { name: 'd', host: 'h', command: '-oProxyCommand=x' },
        { name: 'e', command: 'sleep', env: { 'MY-VAR': 'fine locally' } },
      ],
    });
    const got = problemsOf(text).map((p) => p.path).sort();
    assert.deepEqual(got, [
      '/plugins/0/args/1',
      '/plugins/1/command',
      '/plugins/1/cwd',
      '/plugins/1/env/A=B',
      '/plugins/1/env/OK',
      '/plugins/2/env/9X',
      '/plugins/2/env/MY-VAR',
      '/plugins/3/command',
    ]);
    assert.match(problemsOf(text).find((p) => p.path === '/plugins/0/args/1')!.message, /NUL byte/);
    assert.match(problemsOf(text).find((p) => p.path === '/plugins/2/env/MY-VAR')!.message, /remote plugin/);
  });
});
