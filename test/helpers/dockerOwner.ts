// Plays a VS Code window that starts a Docker plugin and then crashes (SIGKILL, no cleanup).
// argv: workspace stateDir image pluginName. Uses DOCKER_HOST from the environment.
import { Ledger } from '../../src/core/ledger';
import { silentLogger } from '../../src/core/logger';
import { DockerPlugin } from '../../src/backends/docker/docker';
import { currentOwner } from '../../src/backends/local/subprocess';

async function main() {
  const [workspace, stateDir, image, name] = process.argv.slice(2);
  const plugin = new DockerPlugin(
    { name: name!, image: image!, command: 'sleep', args: ['300'], stopGraceSeconds: 1 },
    { workspace: workspace!, ledger: new Ledger(stateDir!), owner: currentOwner('vscode'), log: silentLogger },
  );
  await plugin.start();
  process.stdout.write(`${plugin.containerId}\n`, () => process.kill(process.pid, 'SIGKILL'));
}
main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
