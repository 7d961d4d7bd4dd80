import { createCanvas } from '@napi-rs/canvas';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * A tiny labelled folder for training tests: grey PNGs with a class-specific bright blob (COVID-19: two
 * blobs low in both halves, pneumonia: one blob upper right, normal: none) and a labels.csv naming each
 * file's class and its NIH-style findings.
 */
export function writePngDataset(dir: string, perClass: number, size: number, seed: number): void {
  mkdirSync(dir, { recursive: true });
  let state = seed >>> 0;
  const next = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296;
  };
  const rows = ['file,class,findings'];
  const classes = [
    {
      name: 'COVID-19',
      findings: 'Pneumonia|Consolidation',
      blobs: [
        [0.3, 0.7],
        [0.7, 0.7],
      ],
    },
    { name: 'pneumonia', findings: 'Pneumonia', blobs: [[0.7, 0.3]] },
    { name: 'normal', findings: 'No Finding', blobs: [] },
  ];
  for (const c of classes) {
    for (let i = 0; i < perClass; i += 1) {
      const canvas = createCanvas(size, size);
      const g = canvas.getContext('2d');
      g.fillStyle = `rgb(${60 + Math.floor(next() * 20)},${60},${60})`;
      const grey = 50 + Math.floor(next() * 30);
      g.fillStyle = `rgb(${grey},${grey},${grey})`;
      g.fillRect(0, 0, size, size);
      for (const [bx = 0, by = 0] of c.blobs) {
        g.fillStyle = 'rgb(220,220,220)';
        g.beginPath();
        g.arc((bx + (next() - 0.5) * 0.1) * size, (by + (next() - 0.5) * 0.1) * size, size * 0.12, 0, 2 * Math.PI);
        g.fill();
      }
      const file = `${c.name}-${i}.png`;
      writeFileSync(path.join(dir, file), canvas.toBuffer('image/png'));
      rows.push(`${file},${c.name},${c.findings}`);
    }
  }
  writeFileSync(path.join(dir, 'labels.csv'), `${rows.join('\n')}\n`);
}
