/**
 * A minimal stand-in for the `vscode` module, so plain-node tests can load src/ui code (the
 * tree provider, the model, the commands) and run it for real. Import this helper before any
 * src/ui module: it makes `require('vscode')` resolve to the stub below.
 *
 * Only what src/ui uses is modelled; anything else is an inert function/object (calling it
 * returns undefined), so a test sees real behaviour of Tether's code and none of VS Code's.
 */
import Module from 'node:module';
import * as path from 'node:path';

/** Handlers registered with `vscode.commands.registerCommand`, by command id. */
export const registeredCommands = new Map<string, (...args: unknown[]) => unknown>();
/** Values `vscode.workspace.getConfiguration('tether').get(key)` returns (else the default). */
export const tetherSettings: Record<string, unknown> = {};

class EventEmitter<T> {
  private listeners: Array<(e: T) => void> = [];
  event = (l: (e: T) => void) => {
    this.listeners.push(l);
    return { dispose: () => void (this.listeners = this.listeners.filter((x) => x !== l)) };
  };
  fire(e: T): void {
    for (const l of [...this.listeners]) l(e);
  }
  dispose(): void {
    this.listeners = [];
  }
}

class TreeItem {
  id?: string;
  description?: string;
  tooltip?: unknown;
  iconPath?: unknown;
  contextValue?: string;
  command?: unknown;
  constructor(
    public label: string,
    public collapsibleState = 0,
  ) {}
}

class ThemeIcon {
  static Folder = new ThemeIcon('folder');
  constructor(
    public id: string,
    public color?: unknown,
  ) {}
}

class ThemeColor {
  constructor(public id: string) {}
}

class MarkdownString {
  supportThemeIcons = false;
  constructor(public value = '') {}
}

/** Any property is an inert function that also works as a namespace. */
function inert(): unknown {
  const fn = () => undefined;
  return new Proxy(fn, {
    get: (_t, prop) => (prop === 'then' ? undefined : inert()),
    apply: () => undefined,
  });
}

const disposable = { dispose: () => undefined };

const stub: Record<string, unknown> = {
  EventEmitter,
  TreeItem,
  ThemeIcon,
  ThemeColor,
  MarkdownString,
  TreeItemCollapsibleState: { None: 0, Collapsed: 1, Expanded: 2 },
  ProgressLocation: { SourceControl: 1, Window: 10, Notification: 15 },
  StatusBarAlignment: { Left: 1, Right: 2 },
  Uri: { file: (p: string) => ({ fsPath: p, path: p, scheme: 'file' }), parse: (s: string) => ({ fsPath: s, path: s, scheme: 'file' }) },
  Range: class {
    constructor(...a: number[]) {
      Object.assign(this, { a });
    }
  },
  Disposable: class {
    constructor(private readonly fn: () => void) {}
    dispose(): void {
      this.fn();
    }
  },
  commands: {
    registerCommand: (id: string, fn: (...args: unknown[]) => unknown) => {
      registeredCommands.set(id, fn);
      return { dispose: () => void registeredCommands.delete(id) };
    },
    executeCommand: async () => undefined,
  },
  window: {
    withProgress: async (_o: unknown, task: (p: unknown) => unknown) => task({ report: () => undefined }),
    showWarningMessage: async () => undefined,
    showInformationMessage: async () => undefined,
    showErrorMessage: async () => undefined,
    showQuickPick: async () => undefined,
    showInputBox: async () => undefined,
    createOutputChannel: () => inert(),
    onDidChangeWindowState: () => disposable,
  },
  workspace: {
    getConfiguration: (section?: string) => ({
      get: <T>(key: string, dflt?: T): T | undefined => {
        const full = section ? `${section}.${key}` : key;
        return full.startsWith('tether.') && full.slice('tether.'.length) in tetherSettings ? (tetherSettings[full.slice('tether.'.length)] as T) : dflt;
      },
    }),
    registerTextDocumentContentProvider: () => disposable,
    onDidChangeConfiguration: () => disposable,
    createFileSystemWatcher: () => ({ ...disposable, onDidChange: () => disposable, onDidCreate: () => disposable, onDidDelete: () => disposable }),
    workspaceFolders: undefined,
  },
};

/** Known members as given, anything else inert (also inside namespaces such as `window`). */
function withFallback<T extends object>(o: T): T {
  return new Proxy(o, { get: (t, prop) => (prop in t ? (t as Record<string | symbol, unknown>)[prop] : prop === '__esModule' || prop === 'then' ? undefined : inert()) });
}
for (const ns of ['commands', 'window', 'workspace']) stub[ns] = withFallback(stub[ns] as object);
const vscode = withFallback(stub);

const STUB_FILE = path.join(__dirname, '__vscode_stub__.js');
const M = Module as unknown as {
  _resolveFilename: (request: string, ...rest: unknown[]) => string;
  _cache: Record<string, unknown>;
};
const original = M._resolveFilename;
M._resolveFilename = function (this: unknown, request: string, ...rest: unknown[]): string {
  if (request === 'vscode') return STUB_FILE;
  return original.call(this, request, ...rest);
};
M._cache[STUB_FILE] = { id: STUB_FILE, filename: STUB_FILE, loaded: true, exports: vscode, children: [], paths: [] };

export { vscode };
