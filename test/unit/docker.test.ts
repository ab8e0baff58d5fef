// Pure parts of the Docker plugin (the engine itself is exercised in test/integration/docker.test.ts).
import { strict as assert } from 'node:assert';
import {
  DockerEngineUnavailableError,
  DockerImageNotFoundError,
  DockerPortInUseError,
  LABEL_LEDGER,
  LABEL_LEDGER_ID,
  containerNameFor,
  cpuPercentBetween,
  createOptions,
  demuxLogs,
  dockerSpecFromPlugin,
  parsePorts,
  resolveVolumes,
  toDockerError,
} from '../../src/backends/docker/docker';

describe('docker plugin (pure parts)', () => {
  it('parses port mappings into ExposedPorts and PortBindings, and rejects bad ones', () => {
    assert.deepEqual(parsePorts(['8080:80', '127.0.0.1:9000:9000', '53/udp', '[::1]:8443:443']), {
      exposed: { '80/tcp': {}, '9000/tcp': {}, '53/udp': {}, '443/tcp': {} },
      bindings: {
        '80/tcp': [{ HostPort: '8080' }],
        '9000/tcp': [{ HostIp: '127.0.0.1', HostPort: '9000' }],
        '53/udp': [{ HostPort: '' }],
        '443/tcp': [{ HostIp: '::1', HostPort: '8443' }],
      },
    });
    assert.throws(() => parsePorts(['80:http']), /invalid port mapping "80:http"/);
  });

  it('builds create options with the four labels, env, binds and the stop timeout', () => {
    const spec = dockerSpecFromPlugin({
      name: 'db',
      command: '',
      args: [],
      cwd: '.',
      env: { A: '1' },
      stopGraceSeconds: 7,
      docker: { image: 'postgres:16', ports: ['5432:5432'], env: { B: '2' }, volumes: ['./data:/data', 'named:/cache:ro'] },
    });
    const o = createOptions(spec, { workspace: '/ws', ledgerId: 'abc', ledgerTag: 'tag1', containerName: containerNameFor('db', 'abcdef0123') });
    assert.equal(o.name, 'tether-db-abcdef01');
    assert.equal(o.Image, 'postgres:16');
    assert.equal(o.Cmd, undefined);
    assert.deepEqual(o.Labels, { [LABEL_LEDGER_ID]: 'abc', 'dev.tether.plugin': 'db', 'dev.tether.workspace': '/ws', [LABEL_LEDGER]: 'tag1' });
    assert.deepEqual(o.Env, ['A=1', 'B=2']);
    assert.equal(o.StopTimeout, 7);
    assert.deepEqual(o.HostConfig!.Binds, ['/ws/data:/data', 'named:/cache:ro']);
    assert.deepEqual(resolveVolumes(['/abs:/x'], '/ws'), ['/abs:/x']);
    const withCmd = createOptions({ ...spec, command: 'sleep', args: ['5'] }, { workspace: '/ws', ledgerId: 'a', ledgerTag: 't', containerName: 'n' });
    assert.deepEqual(withCmd.Cmd, ['sleep', '5']);
  });

  it('demultiplexes log frames and computes CPU % like the Docker CLI', () => {
    const frame = (stream: number, text: string) => {
      const h = Buffer.alloc(8);
      h[0] = stream;
      h.writeUInt32BE(Buffer.byteLength(text), 4);
      return Buffer.concat([h, Buffer.from(text)]);
    };
    assert.equal(demuxLogs(Buffer.concat([frame(1, 'out\n'), frame(2, 'err\n')])), 'out\nerr\n');
    assert.equal(demuxLogs(Buffer.from('raw tty text\n')), 'raw tty text\n');
    assert.equal(cpuPercentBetween({ total: 100, system: 1000, cpus: 2 }, { total: 150, system: 1100, cpus: 2 }), 100);
    assert.equal(cpuPercentBetween(undefined, { total: 1, system: 1, cpus: 1 }), null);
  });

  it('maps engine failures to errors with a cause and a remedy', () => {
    const down = toDockerError(Object.assign(new Error('connect ECONNREFUSED /run/docker.sock'), { code: 'ECONNREFUSED', address: '/run/docker.sock' }), 'web');
    assert.ok(down instanceof DockerEngineUnavailableError);
    assert.match(down.message, /not reachable at unix:\/\/\/run\/docker\.sock/);
    assert.match(down.remedy, /systemctl start docker/);
    const perm = toDockerError(Object.assign(new Error('x'), { code: 'EACCES', address: '/run/docker.sock' }), 'web');
    assert.match(perm.remedy, /docker" group/);
    const img = toDockerError({ statusCode: 404, json: { message: 'No such image: nope:1' } }, 'web', { image: 'nope:1' });
    assert.ok(img instanceof DockerImageNotFoundError);
    const port = toDockerError(
      { statusCode: 500, json: { message: 'driver failed programming external connectivity on endpoint x: Bind for 0.0.0.0:8080 failed: port is already allocated' } },
      'web',
    );
    assert.ok(port instanceof DockerPortInUseError);
    assert.match(port.message, /host port 8080 is already in use/);
    const port2 = toDockerError({ statusCode: 500, json: { message: 'listen tcp4 127.0.0.1:9000: bind: address already in use' } }, 'web');
    assert.match(port2.message, /host port 9000 is already in use/);
  });
});
