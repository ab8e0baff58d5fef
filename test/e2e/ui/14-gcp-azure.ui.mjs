// GCP Compute Engine and Azure VMs through the same wizard in a real VS Code, each against its
// strict protocol fake (compute/v1 over http; ARM over https with a throwaway test CA the
// extension host trusts through NODE_EXTRA_CA_CERTS): "Set Cloud API Key…" asks each provider's
// own questions (project/zone/token; subscription/resource group/location/SSH key/token), the
// wizard lists the types with $/h, the confirmation names the price, the instance appears under
// Cloud, and Terminate ends it — at the provider too.
import assert from 'node:assert/strict';
import { acceptPickIfShown, clickDialogButton, contextMenu, openActivity, pick, runCommand, typeInput as type, waitForRow, waitForRows, waitForWorkbench } from '../lib.mjs';
import { FakeGcpComputeServer } from '../../fakes/gcpComputeFake.ts';
import { AzureArmFake } from '../../fakes/azureArmFake.ts';

export const timeout = 240000;
export const workspace = 'demo';
export const userSettings = { 'tether.pollIntervalSeconds': 3 };
let gcp;
let azure;

export async function setup({ log }) {
  gcp = new FakeGcpComputeServer({ project: 'tether-e2e', bootMs: 1500, terminateMs: 300 });
  await gcp.start();
  azure = new AzureArmFake();
  await azure.start();
  log(`fake compute/v1 at ${gcp.url}, fake ARM at ${azure.url}`);
  return {
    env: { TETHER_GCP_API_URL: gcp.url, TETHER_AZURE_API_URL: azure.url, NODE_EXTRA_CA_CERTS: AzureArmFake.caFile },
    teardown: async () => {
      await gcp.stop();
      await azure.stop();
    },
  };
}

/** Types into the input box titled `title` once it is the one shown (the next box replaces the last one asynchronously). */
async function answer(page, title, text) {
  await page.locator('.quick-input-widget .quick-input-title', { hasText: title }).waitFor({ timeout: 15000 });
  await type(page, text);
}

/** Launches `type` on `provider` through the wizard as `name`, checks the row, terminates it. */
async function launchAndTerminate(page, { provider, type: instanceType, region, name, price, screenshot, log, alive, gone }) {
  await runCommand(page, 'Tether: Provision Cloud Instance…');
  await pick(page, provider, 'provider');
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: instanceType }).first();
  await row.waitFor({ timeout: 30000 });
  log(`${provider} type row: ${(await row.innerText()).replace(/\s+/g, ' ')}`);
  await pick(page, instanceType, 'instance type');
  if (region) await pick(page, region, 'region');
  await answer(page, 'name', name);
  const dialog = page.locator('.monaco-dialog-box');
  await dialog.waitFor({ timeout: 15000 });
  const text = (await dialog.innerText()).replace(/\s+/g, ' ');
  log(`confirm: ${text}`);
  assert.match(text, new RegExp(`Launch ${instanceType} on ${provider} for \\$${price}/h\\?`));
  await screenshot(`${name}-confirm`);
  await clickDialogButton(page, 'Launch');
  const shown = await waitForRow(page, new RegExp(`^${name} (running|provisioning)`), { timeout: 60000 });
  log(`instance: ${shown}`);
  assert.ok(await alive(), `${provider}: the provider has the instance`);
  await screenshot(`${name}-running`);
  await contextMenu(page, new RegExp(`${name}\\s*(running|provisioning)`), 'Terminate Instance');
  await acceptPickIfShown(page, name);
  await clickDialogButton(page, 'Terminate');
  await waitForRows(page, (r) => !r.some((x) => new RegExp(`^${name} `).test(x)), `${name} gone`, { timeout: 60000 });
  assert.ok(await gone(), `${provider}: terminated at the provider`);
}

export async function run({ page, url, screenshot, log }) {
  await page.goto(url);
  await waitForWorkbench(page);
  await openActivity(page, 'Tether');
  await waitForRow(page, /^No cloud instances/);

  // GCP: project, zone, token (SecretStorage).
  await runCommand(page, 'Tether: Set Cloud API Key…');
  await pick(page, 'GCP Compute Engine');
  await answer(page, 'project id', 'tether-e2e');
  await answer(page, 'zone', 'us-central1-a');
  await answer(page, 'Google access token', gcp.apiKey);
  await page.locator('.notification-toast', { hasText: 'GCP Compute Engine account saved' }).first().waitFor({ timeout: 15000 });

  // Azure: subscription, resource group, location, SSH public key, token (SecretStorage).
  await runCommand(page, 'Tether: Set Cloud API Key…');
  await pick(page, 'Azure VMs');
  await answer(page, 'subscription id', azure.subscriptionId);
  await answer(page, 'resource group', azure.resourceGroup);
  await answer(page, 'location', 'eastus');
  await answer(page, 'OpenSSH public key', 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGqGkM4Tq3x9t1H1m0pQ0z4o7m8b3yJ8Lw2f8bqkXk5Z e2e@tether');
  await answer(page, 'Azure access token', azure.apiKey);
  await page.locator('.notification-toast', { hasText: 'Azure VMs account saved' }).first().waitFor({ timeout: 15000 });

  // Created once at the provider, deleted once by Terminate (the fakes log every request).
  const deleted = (fake, re) => fake.requests.some((r) => r.method === 'DELETE' && re.test(r.path));
  const until = async (fn) => {
    for (let i = 0; i < 120 && !fn(); i++) await new Promise((r) => setTimeout(r, 500));
    return fn();
  };
  await launchAndTerminate(page, {
    provider: 'GCP Compute Engine', type: 'g2-standard-4', name: 'gce-trainer', price: '\\d+\\.\\d\\d', screenshot, log,
    alive: async () => gcp.instanceCount() === 1,
    gone: () => until(() => deleted(gcp, /\/zones\/us-central1-a\/instances\/tether-[0-9a-z]+-gce-trainer$/)),
  });
  await launchAndTerminate(page, {
    provider: 'Azure VMs', type: 'Standard_NC4as_T4_v3', region: 'eastus', name: 'az-trainer', price: '\\d+\\.\\d\\d', screenshot, log,
    alive: async () => azure.instanceCount() === 1,
    gone: () => until(() => deleted(azure, /\/providers\/Microsoft\.Compute\/virtualMachines\/tether-[0-9a-z]+-az-trainer$/)),
  });
}
