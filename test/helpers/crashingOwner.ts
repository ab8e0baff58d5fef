// Plays a VS Code window that starts a plugin and then crashes (SIGKILL, no cleanup).
import { Engine } from '../../src/workspace/engine';

async function main() {
  const [workspace, stateDir, name] = process.argv.slice(2);
  const engine = new Engine({ workspace: workspace!, stateDir: stateDir!, ownerKind: 'vscode' });
  const rec = await engine.start(name!);
  process.stdout.write(`${rec.processes[0]!.pid}\n`);
  process.kill(process.pid, 'SIGKILL');
}
void main();
