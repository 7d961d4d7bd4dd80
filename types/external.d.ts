// Type declarations for the untyped packages we use. Only the surface the project touches is declared,
// so a call outside it fails to compile instead of silently becoming `any`.

declare module 'dcmjs' {
  type DicomJson = Record<string, { vr: string; Value?: unknown[]; InlineBinary?: string }>;
  type NaturalDataset = Record<string, unknown>;

  interface DicomDictInstance {
    meta: DicomJson;
    dict: DicomJson;
    write(options?: { fragmentMultiframe?: boolean; allowInvalidVRLength?: boolean }): ArrayBuffer;
  }

  interface DcmjsData {
    DicomDict: new (meta: DicomJson) => DicomDictInstance;
    DicomMessage: {
      readFile(
        buffer: ArrayBuffer,
        options?: { ignoreErrors?: boolean; untilTag?: string; includeUntilTagValue?: boolean },
      ): DicomDictInstance;
    };
    DicomMetaDictionary: {
      naturalizeDataset(dataset: DicomJson): NaturalDataset;
      denaturalizeDataset(dataset: NaturalDataset): DicomJson;
      uid(): string;
      date(): string;
      time(): string;
    };
  }

  interface DcmjsLog {
    /** loglevel names ('trace' .. 'silent') or their numbers (0 .. 5). */
    setLevel(level: string | number): void;
    getLevel(): number;
    /** Named child loggers, e.g. 'validation.dcmjs' (VR problems met while reading). */
    getLogger(name: string): DcmjsLog;
  }

  const dcmjs: { data: DcmjsData; log: DcmjsLog };
  export default dcmjs;
  export type { DicomJson, NaturalDataset, DicomDictInstance };
}
