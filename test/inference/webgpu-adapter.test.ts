import test from 'ava';
import {
  adapterSummary,
  checkAdapter,
  describeAdapter,
  isSoftwareAdapter,
  type GpuAdapterDescription,
} from '../../src/inference/webgpu-adapter.js';

// What Dawn reports (GPUAdapterInfo) for the adapters we expect to meet. The lavapipe line is from this
// machine (Mesa 25.0.7 from bookworm-backports); the others follow Dawn's naming.
const adapters: Record<string, { info: GpuAdapterDescription; software: boolean }> = {
  lavapipe: {
    info: {
      vendor: 'mesa',
      architecture: 'software',
      device: 'llvmpipe-llvm-15-0-6-256-bits-',
      description: 'llvmpipe: Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6) 0.0.1',
      isFallbackAdapter: true,
    },
    software: true,
  },
  'lavapipe without the fallback flag': {
    info: {
      vendor: 'mesa',
      architecture: '',
      device: 'llvmpipe (LLVM 15.0.6, 256 bits)',
      description: '',
      isFallbackAdapter: false,
    },
    software: true,
  },
  swiftshader: {
    info: {
      vendor: 'google',
      architecture: 'swiftshader',
      device: 'swiftshader device',
      description: 'SwiftShader driver',
      isFallbackAdapter: true,
    },
    software: true,
  },
  nvidia: {
    info: {
      vendor: 'nvidia',
      architecture: 'hopper',
      device: 'NVIDIA H100 80GB HBM3',
      description: 'NVIDIA: 550.54.15 550.54.15.0',
      isFallbackAdapter: false,
    },
    software: false,
  },
  'amd radv': {
    info: {
      vendor: 'amd',
      architecture: 'rdna-3',
      device: 'AMD Radeon RX 7900 XTX (RADV NAVI31)',
      description: 'radv: Mesa 25.0.7',
      isFallbackAdapter: false,
    },
    software: false,
  },
};

for (const [name, { info, software }] of Object.entries(adapters)) {
  test(`${name}: ${software ? 'software, refused unless allowed' : 'hardware, accepted'}`, (t) => {
    t.is(isSoftwareAdapter(info), software);
    if (software) {
      const error = t.throws(() => checkAdapter(info, false), { message: /software adapter .*allowSoftwareGpu/ });
      t.is((error as { code?: string } | undefined)?.code, 'WEBGPU_SOFTWARE_ADAPTER');
    } else t.notThrows(() => checkAdapter(info, false));
    t.notThrows(() => checkAdapter(info, true));
  });
}

test('describeAdapter reads the fields Dawn gives, and tolerates missing ones', (t) => {
  t.deepEqual(describeAdapter({ info: { vendor: 'nvidia', architecture: 'ampere', isFallbackAdapter: false } }), {
    vendor: 'nvidia',
    architecture: 'ampere',
    device: '',
    description: '',
    isFallbackAdapter: false,
  });
  // Older Dawn builds had isFallbackAdapter on the adapter, not in its info.
  t.true(describeAdapter({ info: {}, isFallbackAdapter: true }).isFallbackAdapter);
  t.is(describeAdapter({}).vendor, '');
  t.is(adapterSummary(describeAdapter({})), 'unknown vendor');
});
