// Bundles the extension and the CLI into dist/ (CommonJS for Node >= 20).
// `vscode` is provided by the host; ssh2's optional native parts are absent on purpose.
'use strict';
const path = require('path');
const webpack = require('webpack');

/** @type {(env: unknown, argv: {mode?: string}) => import('webpack').Configuration} */
const extensionConfig = (_env, argv) => ({
  target: 'node20',
  mode: argv.mode ?? 'production',
  entry: {
    extension: './src/extension.ts',
    cli: './src/cliEntry.ts',
  },
  output: {
    path: path.resolve(__dirname, 'dist'),
    filename: '[name].js',
    // Code loaded on first use (the AWS SDKs, ssh2, dockerode, each cloud provider client, execa):
    // `import()` makes a chunk in dist/chunks/, which Node loads with require() when it is needed.
    chunkFilename: 'chunks/[name].js',
    libraryTarget: 'commonjs2',
    clean: { keep: /(\.vsix$|^webview|^types)/ },
  },
  externals: { vscode: 'commonjs vscode' },
  resolve: { extensions: ['.ts', '.js', '.mjs', '.cjs', '.json'] },
  module: {
    rules: [{ test: /\.ts$/, exclude: /node_modules/, loader: 'esbuild-loader', options: { target: 'node20' } }],
  },
  plugins: [
    new webpack.DefinePlugin({ __TETHER_VERSION__: JSON.stringify(require('./package.json').version), __TETHER_BUNDLED__: 'true' }),
    new webpack.BannerPlugin({ banner: '#!/usr/bin/env node', raw: true, entryOnly: true, test: /cli\.js$/ }),
    // ssh2 tries these optional native modules and falls back to pure JS when they are missing.
    new webpack.IgnorePlugin({ resourceRegExp: /^(cpu-features|\.\/crypto\/build\/Release\/sshcrypto\.node|bufferutil|utf-8-validate)$/ }), // ws (@kubernetes/client-node) falls back without its optional native helpers
  ],
  optimization: {
    // Readable chunk names (dist/chunks/<what it holds>.js) that stay the same from build to build.
    chunkIds: 'named',
    // Keep class names (error classes are told apart by name); function names go, to keep the main bundle small.
    minimize: argv.mode === 'production',
    minimizer: [new (require('terser-webpack-plugin'))({ terserOptions: { keep_classnames: true, keep_fnames: false } })],
  },
  devtool: argv.mode === 'production' ? false : 'source-map',
  ignoreWarnings: [{ module: /ssh2/, message: /Can't resolve|Critical dependency/ }],
  performance: { hints: false },
});

/** The cost report webview's script: a browser bundle with Chart.js inside (no CDN). */
const webviewConfig = (_env, argv) => ({
  target: 'web',
  mode: argv.mode ?? 'production',
  entry: { costReport: './src/webview/costReport.ts' },
  output: { path: path.resolve(__dirname, 'dist', 'webview'), filename: '[name].js' },
  resolve: { extensions: ['.ts', '.js'] },
  module: { rules: [{ test: /\.ts$/, exclude: /node_modules/, loader: 'esbuild-loader', options: { target: 'es2020' } }] },
  devtool: false,
  performance: { hints: false },
});

module.exports = (env, argv) => [extensionConfig(env, argv), webviewConfig(env, argv)];
