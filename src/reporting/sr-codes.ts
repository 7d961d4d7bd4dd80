// Coded concepts of the classification SR: standard codes (DCM, SCT, UMLS, UCUM, RFC5646) only. A model class
// that is none of the known ones gets a code in our private scheme 99CXRGW, which the SR then declares in its
// Coding Scheme Identification Sequence (validators that only know the registered schemes will warn about it).

export interface Code {
  CodeValue: string;
  CodingSchemeDesignator: string;
  CodeMeaning: string;
}

export const LOCAL_SCHEME = '99CXRGW';

export const LOCAL_SCHEME_IDENTIFICATION = {
  CodingSchemeDesignator: LOCAL_SCHEME,
  CodingSchemeName: 'cxr-gateway local codes',
  CodingSchemeResponsibleOrganization: 'cxr-gateway',
};

const code = (CodeValue: string, CodingSchemeDesignator: string, CodeMeaning: string): Code => ({
  CodeValue,
  CodingSchemeDesignator,
  CodeMeaning,
});

export const CODES = {
  imagingMeasurementReport: code('126000', 'DCM', 'Imaging Measurement Report'),
  language: code('121049', 'DCM', 'Language of Content Item and Descendants'),
  english: code('en-US', 'RFC5646', 'English (United States)'),
  observerType: code('121005', 'DCM', 'Observer Type'),
  device: code('121007', 'DCM', 'Device'),
  deviceObserverUid: code('121012', 'DCM', 'Device Observer UID'),
  deviceObserverName: code('121013', 'DCM', 'Device Observer Name'),
  deviceObserverManufacturer: code('121014', 'DCM', 'Device Observer Manufacturer'),
  deviceObserverModelName: code('121015', 'DCM', 'Device Observer Model Name'),
  procedureReported: code('121058', 'DCM', 'Procedure reported'),
  plainChestXray: code('399208008', 'SCT', 'Plain chest X-ray'),
  imageLibrary: code('111028', 'DCM', 'Image Library'),
  imagingMeasurements: code('126010', 'DCM', 'Imaging Measurements'),
  measurementGroup: code('125007', 'DCM', 'Measurement Group'),
  algorithmName: code('111001', 'DCM', 'Algorithm Name'),
  algorithmVersion: code('111003', 'DCM', 'Algorithm Version'),
  finding: code('121071', 'DCM', 'Finding'),
  comment: code('121106', 'DCM', 'Comment'),
  probabilityUnit: code('{probability}', 'UCUM', 'probability'),
  probability: code('C0033204', 'UMLS', 'Probability'),
} as const;

/** The three classes of the COVID-19 / pneumonia / normal models, by the names their manifests use. */
const KNOWN_CLASSES: Record<string, Code> = {
  'covid-19': code('840539006', 'SCT', 'COVID-19'),
  covid19: code('840539006', 'SCT', 'COVID-19'),
  pneumonia: code('233604007', 'SCT', 'Pneumonia'),
  normal: code('17621005', 'SCT', 'Normal'),
};

/** The finding code of a model class: SNOMED CT for the known ones, else a local 99CXRGW code (CodeValue <= 16 chars). */
export function classCode(name: string): Code {
  const known = KNOWN_CLASSES[name.trim().toLowerCase()];
  if (known) return known;
  const value = `C-${name.toUpperCase().replace(/[^A-Z0-9]+/g, '-')}`.slice(0, 16);
  return code(value, LOCAL_SCHEME, name.slice(0, 64));
}
