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

declare module 'hl7-standard' {
  /**
   * A field value as hl7-standard stores it: a plain string, components keyed 'SEG.n.m' (joined with '^'),
   * or repetitions of those. Values are written verbatim: the library escapes nothing.
   */
  type Hl7StandardComponents = Record<string, string | string[]>;
  type Hl7StandardValue = string | Hl7StandardComponents | Array<string | Hl7StandardComponents>;

  interface Hl7StandardSegment {
    readonly type: string;
    /** Position in the message; build() sorts segments by it. */
    index: number;
    /** Field keys ('OBX.5') in insertion order: build() writes them in that order, not by number. */
    data: Record<string, Hl7StandardValue>;
    /** Sets a field of this segment (e.g. 'OBX.5' or 'OBX.3.2'), creating the empty fields before it. */
    set(field: string, value: Hl7StandardValue, sectionIndex?: number, subIndex?: number): Hl7StandardValue;
    get(field: string, sectionIndex?: number, subIndex?: number): Hl7StandardValue | null;
  }

  interface Hl7StandardOptions {
    /** Segment separator for build(); the library's default is '\r\n', HL7 wants '\r'. */
    lineEndings?: string;
    /** The repetition separator (the library calls it subComponents), default '~'. */
    subComponents?: string;
    /** The subcomponent separator (the library calls it repeatingFields), default '&'. */
    repeatingFields?: string;
  }

  class HL7 {
    constructor(data?: string, options?: Hl7StandardOptions);
    raw: string;
    transform(callback?: (error: Error | null, result: unknown) => void, batch?: boolean): void;
    build(): string;
    createSegment(name: string): Hl7StandardSegment;
    getSegment(name: string): Hl7StandardSegment | null;
    getSegments(name?: string): Hl7StandardSegment[];
    set(field: string, value: Hl7StandardValue, index?: number, sectionIndex?: number, subIndex?: number): Hl7StandardValue;
    get(field: string, index?: number, sectionIndex?: number, subIndex?: number): Hl7StandardValue | null;
  }

  export default HL7;
  export type { Hl7StandardSegment, Hl7StandardValue, Hl7StandardComponents, Hl7StandardOptions };
}
