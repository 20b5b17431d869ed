"""Code lists of the 005010X279A1 271, each a plain ``dict`` from code to a short description.

Pure data and lookups, no I/O.  The codes are the standard's; the descriptions are ours, written
for a front desk (lower case, plain words; the X12 names are kept where they already are plain).
Every ``*_description`` function answers ``"unknown code X"`` for a code it does not know, so a
payer sending a code newer than this file never breaks an answer.

Tables (element in brackets):

* ``ELIGIBILITY_CODES`` [EB01], ``COVERAGE_LEVELS`` [EB02], ``SERVICE_TYPES`` [EB03, EQ01],
  ``INSURANCE_TYPES`` [EB04], ``TIME_PERIODS`` [EB06, HSD05], ``QUANTITY_QUALIFIERS`` [EB09, HSD01],
  ``HSD_UNITS`` [HSD03], ``DELIVERY_FREQUENCIES`` [HSD07], ``DELIVERY_PATTERN_TIMES`` [HSD08],
  ``AUTH_INDICATORS`` [EB11], ``NETWORK_INDICATORS`` [EB12], ``PROCEDURE_QUALIFIERS`` [EB13-1],
  ``REJECT_REASONS`` [AAA03], ``FOLLOW_UP_ACTIONS`` [AAA04], ``ENTITY_IDENTIFIERS`` [NM101],
  ``REF_QUALIFIERS`` [REF01], ``DTP_QUALIFIERS`` [DTP01], ``RELATIONSHIPS`` [INS02],
  ``PLACES_OF_SERVICE`` [III02 with III01 ZZ].
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

# --- EB01 eligibility or benefit information ------------------------------------------------------

ELIGIBILITY_CODES: Final[dict[str, str]] = {
    "1": "active coverage",
    "2": "active - full risk capitation",
    "3": "active - services capitated",
    "4": "active - services capitated to primary care physician",
    "5": "active - pending investigation",
    "6": "inactive",
    "7": "inactive - pending eligibility update",
    "8": "inactive - pending investigation",
    "A": "co-insurance",
    "B": "co-payment",
    "C": "deductible",
    "CB": "coverage basis",
    "D": "benefit description",
    "E": "exclusions",
    "F": "limitations",
    "G": "out of pocket (stop loss)",
    "H": "unlimited",
    "I": "non-covered",
    "J": "cost containment",
    "K": "reserve",
    "L": "primary care provider",
    "M": "pre-existing condition",
    "MC": "managed care coordinator",
    "N": "services restricted to the following provider",
    "O": "not deemed a medical necessity",
    "P": "benefit disclaimer",
    "Q": "second surgical opinion required",
    "R": "other or additional payer",
    "S": "prior year(s) history",
    "T": "card(s) reported lost or stolen",
    "U": "contact the following entity for eligibility or benefit information",
    "V": "cannot process",
    "W": "other source of data",
    "X": "health care facility",
    "Y": "spend down",
}

ACTIVE_CODES: Final[frozenset[str]] = frozenset({"1", "2", "3", "4", "5"})
INACTIVE_CODES: Final[frozenset[str]] = frozenset({"6", "7", "8"})
COST_SHARE_CODES: Final[frozenset[str]] = frozenset({"A", "B", "C", "G"})

# --- EB02 coverage level ----------------------------------------------------------------------------

COVERAGE_LEVELS: Final[dict[str, str]] = {
    "CHD": "children only",
    "DEP": "dependents only",
    "ECH": "employee and children",
    "EMP": "employee only",
    "ESP": "employee and spouse",
    "FAM": "family",
    "IND": "individual",
    "SPC": "spouse and children",
    "SPO": "spouse only",
}

INDIVIDUAL_LEVELS: Final[frozenset[str]] = frozenset({"", "IND", "EMP"})
FAMILY_LEVELS: Final[frozenset[str]] = frozenset({"FAM", "ESP", "ECH", "SPC", "SPO", "CHD", "DEP"})

# --- EB03 / EQ01 service type ----------------------------------------------------------------------

SERVICE_TYPES: Final[dict[str, str]] = {
    "1": "medical care",
    "2": "surgical",
    "3": "consultation",
    "4": "diagnostic x-ray",
    "5": "diagnostic lab",
    "6": "radiation therapy",
    "7": "anesthesia",
    "8": "surgical assistance",
    "9": "other medical",
    "10": "blood charges",
    "11": "used durable medical equipment",
    "12": "durable medical equipment purchase",
    "13": "ambulatory service center facility",
    "14": "renal supplies in the home",
    "15": "alternate method dialysis",
    "16": "chronic renal disease (CRD) equipment",
    "17": "pre-admission testing",
    "18": "durable medical equipment rental",
    "19": "pneumonia vaccine",
    "20": "second surgical opinion",
    "21": "third surgical opinion",
    "22": "social work",
    "23": "diagnostic dental",
    "24": "periodontics",
    "25": "restorative dental",
    "26": "endodontics",
    "27": "maxillofacial prosthetics",
    "28": "adjunctive dental services",
    "30": "health benefit plan coverage",
    "32": "plan waiting period",
    "33": "chiropractic",
    "34": "chiropractic office visits",
    "35": "dental care",
    "36": "dental crowns",
    "37": "dental accident",
    "38": "orthodontics",
    "39": "prosthodontics",
    "40": "oral surgery",
    "41": "routine (preventive) dental",
    "42": "home health care",
    "43": "home health prescriptions",
    "44": "home health visits",
    "45": "hospice",
    "46": "respite care",
    "47": "hospital",
    "48": "hospital - inpatient",
    "49": "hospital - room and board",
    "50": "hospital - outpatient",
    "51": "hospital - emergency accident",
    "52": "hospital - emergency medical",
    "53": "hospital - ambulatory surgical",
    "54": "long term care",
    "55": "major medical",
    "56": "medically related transportation",
    "57": "air transportation",
    "58": "cabulance",
    "59": "licensed ambulance",
    "60": "general benefits",
    "61": "in-vitro fertilization",
    "62": "MRI/CAT scan",
    "63": "donor procedures",
    "64": "acupuncture",
    "65": "newborn care",
    "66": "pathology",
    "67": "smoking cessation",
    "68": "well baby care",
    "69": "maternity",
    "70": "transplants",
    "71": "audiology exam",
    "72": "inhalation therapy",
    "73": "diagnostic medical",
    "74": "private duty nursing",
    "75": "prosthetic device",
    "76": "dialysis",
    "77": "otological exam",
    "78": "chemotherapy",
    "79": "allergy testing",
    "80": "immunizations",
    "81": "routine physical",
    "82": "family planning",
    "83": "infertility",
    "84": "abortion",
    "85": "AIDS",
    "86": "emergency services",
    "87": "cancer",
    "88": "pharmacy",
    "89": "free-standing prescription drug",
    "90": "mail order prescription drug",
    "91": "brand name prescription drug",
    "92": "generic prescription drug",
    "93": "podiatry",
    "94": "podiatry - office visits",
    "95": "podiatry - nursing home visits",
    "96": "professional (physician)",
    "97": "anesthesiologist",
    "98": "professional (physician) visit - office",
    "99": "professional (physician) visit - inpatient",
    "A0": "professional (physician) visit - outpatient",
    "A1": "professional (physician) visit - nursing home",
    "A2": "professional (physician) visit - skilled nursing facility",
    "A3": "professional (physician) visit - home",
    "A4": "psychiatric",
    "A5": "psychiatric - room and board",
    "A6": "psychotherapy",
    "A7": "psychiatric - inpatient",
    "A8": "psychiatric - outpatient",
    "A9": "rehabilitation",
    "AA": "rehabilitation - room and board",
    "AB": "rehabilitation - inpatient",
    "AC": "rehabilitation - outpatient",
    "AD": "occupational therapy",
    "AE": "physical medicine",
    "AF": "speech therapy",
    "AG": "skilled nursing care",
    "AH": "skilled nursing care - room and board",
    "AI": "substance abuse",
    "AJ": "alcoholism",
    "AK": "drug addiction",
    "AL": "vision (optometry)",
    "AM": "frames",
    "AN": "routine exam",
    "AO": "lenses",
    "AQ": "non-medically necessary physical",
    "AR": "experimental drug therapy",
    "B1": "burn care",
    "B2": "brand name prescription drug - formulary",
    "B3": "brand name prescription drug - non-formulary",
    "BA": "independent medical evaluation",
    "BB": "partial hospitalization (psychiatric)",
    "BC": "day care (psychiatric)",
    "BD": "cognitive therapy",
    "BE": "massage therapy",
    "BF": "pulmonary rehabilitation",
    "BG": "cardiac rehabilitation",
    "BH": "pediatric",
    "BI": "nursery",
    "BJ": "skin",
    "BK": "orthopedic",
    "BL": "cardiac",
    "BM": "lymphatic",
    "BN": "gastrointestinal",
    "BP": "endocrine",
    "BQ": "neurology",
    "BR": "eye",
    "BS": "invasive procedures",
    "BT": "gynecological",
    "BU": "obstetrical",
    "BV": "obstetrical/gynecological",
    "BW": "mail order prescription drug - brand name",
    "BX": "mail order prescription drug - generic",
    "BY": "physician visit - office: sick",
    "BZ": "physician visit - office: well",
    "C1": "coronary care",
    "CA": "private duty nursing - inpatient",
    "CB": "private duty nursing - home",
    "CC": "surgical benefits - professional (physician)",
    "CD": "surgical benefits - facility",
    "CE": "mental health provider - inpatient",
    "CF": "mental health provider - outpatient",
    "CG": "mental health facility - inpatient",
    "CH": "mental health facility - outpatient",
    "CI": "substance abuse facility - inpatient",
    "CJ": "substance abuse facility - outpatient",
    "CK": "screening x-ray",
    "CL": "screening laboratory",
    "CM": "mammogram, high risk patient",
    "CN": "mammogram, low risk patient",
    "CO": "flu vaccination",
    "CP": "eyewear and eyewear accessories",
    "CQ": "case management",
    "DG": "dermatology",
    "DM": "durable medical equipment",
    "DS": "diabetic supplies",
    "GF": "generic prescription drug - formulary",
    "GN": "generic prescription drug - non-formulary",
    "GY": "allergy",
    "IC": "intensive care",
    "MH": "mental health",
    "NI": "neonatal intensive care",
    "ON": "oncology",
    "PT": "physical therapy",
    "PU": "pulmonary",
    "RN": "renal",
    "RT": "residential psychiatric treatment",
    "TC": "transitional care",
    "TN": "transitional nursery care",
    "UC": "urgent care",
    # Added to the external code list after the 5010 TR3 was published (usable in 5010).
    "E0": "applied behavioral analysis therapy",
    "E1": "non-medical equipment (not DME)",
    "E2": "psychiatric emergency",
    "E3": "step-down unit",
    "E4": "skilled nursing facility head level of care",
    "E5": "skilled nursing facility ventilator level of care",
    "E6": "level of care 1",
    "E7": "level of care 2",
    "E8": "level of care 3",
    "E9": "level of care 4",
    "E10": "radiographs",
    "E11": "diagnostic imaging",
    "E12": "basic restorative dental",
    "E13": "major restorative dental",
    "E14": "fixed prosthodontics",
    "E15": "removable prosthodontics",
    "E16": "intraoral images - complete series",
    "E17": "oral evaluation",
    "E18": "dental prophylaxis",
    "E19": "panoramic images",
    "E20": "sealants",
    "E21": "fluoride treatments",
    "E22": "dental implants",
    "E23": "temporomandibular joint dysfunction",
    "E24": "retail pharmacy prescription drug",
    "E25": "long term care pharmacy",
    "E26": "comprehensive medication therapy management review",
    "E27": "targeted medication therapy management review",
    "E28": "dietary/nutritional services",
    "E29": "cardiac rehabilitation - technical component (retired)",
    "E30": "cardiac rehabilitation - professional component (retired)",
    "E31": "intensive cardiac rehabilitation - professional component (retired)",
    "E32": "intensive cardiac rehabilitation - technical component (retired)",
    "E33": "intensive cardiac rehabilitation",
    "E34": "pulmonary rehabilitation - technical component (retired)",
    "E35": "pulmonary rehabilitation - professional component (retired)",
    "E36": "convenience care",
    "E37": "telemedicine",
    "E38": "pharmacist services",
    "E39": "diabetic education",
    "E40": "early intervention",
    "EA": "preventive services",
    "EB": "specialty pharmacy",
    "EC": "durable medical equipment - new",
    "ED": "CAT scan",
    "EE": "ophthalmology",
    "EF": "contact lenses",
    "F1": "medical coverage",
    "F2": "social work coverage",
    "F3": "dental coverage",
    "F4": "hearing coverage",
    "F5": "prescription drug coverage",
    "F6": "vision coverage",
    "F7": "orthodontia coverage",
    "F8": "mental health coverage",
    "PE": "positron emission tomography (PET) scan",
    "SMH": "serious mental health",
}

# The service type codes the 005010X279A1 TR3 lists: what a 270 we send may carry in EQ01, and what
# our implementation-guide maps accept in EB03.  The later additions above are understood when a
# payer sends them, but never sent by us.
_FIRST_LATER_SERVICE_TYPE = "E0"


def _tr3_service_types() -> frozenset[str]:
    codes = list(SERVICE_TYPES)
    return frozenset(codes[: codes.index(_FIRST_LATER_SERVICE_TYPE)])


TR3_SERVICE_TYPES: Final[frozenset[str]] = _tr3_service_types()

# --- EB04 insurance type ----------------------------------------------------------------------------

INSURANCE_TYPES: Final[dict[str, str]] = {
    "12": "Medicare secondary: working aged beneficiary or spouse with employer group health plan",
    "13": "Medicare secondary: end-stage renal disease beneficiary in the coordination period",
    "14": "Medicare secondary: no-fault insurance, including auto, is primary",
    "15": "Medicare secondary: workers' compensation",
    "16": "Medicare secondary: public health service or other federal agency",
    "41": "Medicare secondary: black lung",
    "42": "Medicare secondary: veterans administration",
    "43": "Medicare secondary: disabled beneficiary under 65 with a large group health plan",
    "47": "Medicare secondary: other liability insurance is primary",
    "AP": "auto insurance policy",
    "C1": "commercial",
    "CO": "COBRA continuation coverage",
    "CP": "Medicare conditionally primary",
    "D": "disability",
    "DB": "disability benefits",
    "EP": "exclusive provider organization (EPO)",
    "FF": "family or friends",
    "GP": "group policy",
    "HM": "health maintenance organization (HMO)",
    "HN": "HMO - Medicare risk",
    "HS": "special low income Medicare beneficiary",
    "IN": "indemnity",
    "IP": "individual policy",
    "LC": "long term care",
    "LD": "long term policy",
    "LI": "life insurance",
    "LT": "litigation",
    "MA": "Medicare part A",
    "MB": "Medicare part B",
    "MC": "Medicaid",
    "MH": "Medigap part A",
    "MI": "Medigap part B",
    "MP": "Medicare primary",
    "OT": "other",
    "PE": "property insurance - personal",
    "PL": "personal",
    "PP": "personal payment (cash, no insurance)",
    "PR": "preferred provider organization (PPO)",
    "PS": "point of service (POS)",
    "QM": "qualified Medicare beneficiary",
    "RP": "property insurance - real",
    "SP": "supplemental policy",
    "TF": "TEFRA (tax equity and fiscal responsibility act)",
    "WC": "workers' compensation",
    "WU": "wrap up policy",
}

# --- EB06 / HSD05 time period -----------------------------------------------------------------------

TIME_PERIODS: Final[dict[str, str]] = {
    "6": "hour",
    "7": "day",
    "13": "24 hours",
    "21": "years",
    "22": "service year",
    "23": "calendar year",
    "24": "year to date",
    "25": "contract",
    "26": "episode",
    "27": "visit",
    "28": "outlier",
    "29": "remaining",
    "30": "exceeded",
    "31": "not exceeded",
    "32": "lifetime",
    "33": "lifetime remaining",
    "34": "month",
    "35": "week",
    "36": "admission",
}

# How a time period reads after a quantity: "20 visits per calendar year", "3 visits remaining".
# (singular phrase, phrase used when HSD06 counts more than one period)
TIME_PERIOD_PHRASES: Final[dict[str, tuple[str, str]]] = {
    "6": ("per hour", "hours"),
    "7": ("per day", "days"),
    "13": ("per 24 hours", "times 24 hours"),
    "21": ("per year", "years"),
    "22": ("per service year", "service years"),
    "23": ("per calendar year", "calendar years"),
    "24": ("year to date", "years to date"),
    "25": ("per contract", "contracts"),
    "26": ("per episode", "episodes"),
    "27": ("per visit", "visits"),
    "28": ("outlier", "outliers"),
    "29": ("remaining", "remaining"),
    "30": ("exceeded", "exceeded"),
    "31": ("not exceeded", "not exceeded"),
    "32": ("per lifetime", "lifetimes"),
    "33": ("remaining in the lifetime", "remaining in the lifetime"),
    "34": ("per month", "months"),
    "35": ("per week", "weeks"),
    "36": ("per admission", "admissions"),
}

# --- EB09 / HSD01 quantity qualifier ----------------------------------------------------------------

QUANTITY_QUALIFIERS: Final[dict[str, str]] = {
    "8H": "minimum",
    "99": "quantity used",
    "CA": "covered - actual",
    "CE": "covered - estimated",
    "D3": "number of co-insurance days",
    "DB": "deductible blood units",
    "DY": "days",
    "FL": "units",
    "HS": "hours",
    "LA": "lifetime reserve - actual",
    "LE": "lifetime reserve - estimated",
    "M2": "maximum",
    "MN": "month",
    "P6": "number of services or procedures",
    "QA": "quantity approved",
    "S7": "age, high value",
    "S8": "age, low value",
    "VS": "visits",
    "YY": "years",
}

# The noun a quantity is counted in: (singular, plural).  Qualifiers that are not a unit
# ("quantity used", "maximum") read as a word after the number: "3 used", "2 maximum".
QUANTITY_NOUNS: Final[dict[str, tuple[str, str]]] = {
    "8H": ("minimum", "minimum"),
    "99": ("used", "used"),
    "CA": ("covered (actual)", "covered (actual)"),
    "CE": ("covered (estimated)", "covered (estimated)"),
    "D3": ("co-insurance day", "co-insurance days"),
    "DB": ("deductible blood unit", "deductible blood units"),
    "DY": ("day", "days"),
    "FL": ("unit", "units"),
    "HS": ("hour", "hours"),
    "LA": ("lifetime reserve day (actual)", "lifetime reserve days (actual)"),
    "LE": ("lifetime reserve day (estimated)", "lifetime reserve days (estimated)"),
    "M2": ("maximum", "maximum"),
    "MN": ("month", "months"),
    "P6": ("service", "services"),
    "QA": ("approved", "approved"),
    "S7": ("years of age at most", "years of age at most"),
    "S8": ("years of age at least", "years of age at least"),
    "VS": ("visit", "visits"),
    "YY": ("year", "years"),
}

# --- HSD03 unit, HSD07 delivery frequency, HSD08 delivery pattern time -------------------------------

HSD_UNITS: Final[dict[str, str]] = {
    "DA": "days",
    "MO": "months",
    "VS": "visits",
    "WK": "weeks",
    "YR": "years",
}

DELIVERY_FREQUENCIES: Final[dict[str, str]] = {
    "1": "1st week of the month",
    "2": "2nd week of the month",
    "3": "3rd week of the month",
    "4": "4th week of the month",
    "5": "5th week of the month",
    "6": "1st and 3rd weeks of the month",
    "7": "2nd and 4th weeks of the month",
    "8": "1st working day of the period",
    "9": "last working day of the period",
    "A": "Monday through Friday",
    "B": "Monday through Saturday",
    "C": "Monday through Sunday",
    "D": "Monday",
    "E": "Tuesday",
    "F": "Wednesday",
    "G": "Thursday",
    "H": "Friday",
    "J": "Saturday",
    "K": "Sunday",
    "L": "Monday through Thursday",
    "M": "immediately",
    "N": "as directed",
}

DELIVERY_PATTERN_TIMES: Final[dict[str, str]] = {
    "1": "1st shift (normal working hours)",
    "2": "2nd shift",
    "3": "3rd shift",
    "A": "a.m.",
    "B": "p.m.",
    "C": "as directed",
    "D": "any shift",
    "Y": "none",
}

# --- EB11, EB12, EB13 ------------------------------------------------------------------------------

AUTH_INDICATORS: Final[dict[str, str]] = {
    "Y": "authorization or certification required",
    "N": "no authorization or certification required",
    "U": "unknown whether authorization or certification is required",
}

NETWORK_INDICATORS: Final[dict[str, str]] = {
    "Y": "in network",
    "N": "out of network",
    "W": "applies both in and out of network",
    "U": "unknown whether in or out of network",
}

PROCEDURE_QUALIFIERS: Final[dict[str, str]] = {
    "AD": "American Dental Association (CDT) codes",
    "CJ": "CPT codes",
    "HC": "HCPCS and CPT codes",
    "ID": "ICD-9-CM procedure codes",
    "IV": "home infusion EDI coalition product/service codes",
    "N4": "national drug codes (NDC, 5-4-2)",
    "ZZ": "mutually defined codes",
}

# --- AAA03 reject reason, AAA04 follow-up action ------------------------------------------------------

REJECT_REASONS: Final[dict[str, str]] = {
    "04": "authorized quantity exceeded",
    "15": "required application data missing",
    "33": "input errors",
    "35": "out of network",
    "41": "authorization or access restrictions",
    "42": "the payer cannot respond at this time",
    "43": "invalid or missing provider identification",
    "44": "invalid or missing provider name",
    "45": "invalid or missing provider specialty",
    "46": "invalid or missing provider phone number",
    "47": "invalid or missing provider state",
    "48": "invalid or missing referring provider identification number",
    "49": "the provider is not the patient's primary care physician",
    "50": "the provider is not eligible to make inquiries",
    "51": "the provider is not on file with the payer",
    "52": "the service dates are not within the provider's plan enrollment",
    "53": "the benefit asked about does not fit the provider type",
    "54": "inappropriate product or service ID qualifier",
    "55": "inappropriate product or service ID",
    "56": "inappropriate date",
    "57": "invalid or missing date(s) of service",
    "58": "invalid or missing date of birth",
    "60": "the date of birth is after the date(s) of service",
    "61": "the date of death is before the date(s) of service",
    "62": "the date of service is outside the allowed inquiry period",
    "63": "the date of service is in the future",
    "64": "invalid or missing patient ID",
    "65": "invalid or missing patient name",
    "66": "invalid or missing patient gender",
    "67": "patient not found",
    "68": "duplicate patient ID number",
    "69": "inconsistent with the patient's age",
    "70": "inconsistent with the patient's gender",
    "71": "the patient's birth date does not match the payer's records",
    "72": "invalid or missing subscriber/insured ID",
    "73": "invalid or missing subscriber/insured name",
    "74": "invalid or missing subscriber/insured gender",
    "75": "subscriber/insured not found",
    "76": "duplicate subscriber/insured ID number",
    "77": "subscriber found, patient not found",
    "78": "subscriber/insured is not in the group or plan identified",
    "79": "invalid participant identification",
    "80": "no response received; the transaction was terminated",
    "97": "invalid or missing provider address",
    "98": "experimental service or procedure",
    "AA": "authorization number not found",
    "AE": "requires primary care physician authorization",
    "AF": "invalid or missing diagnosis code(s)",
    "AG": "invalid or missing procedure code(s)",
    "AO": "additional patient condition information required",
    "CI": "certification information does not match the patient",
    "E8": "requires medical review",
    "IA": "invalid authorization number format",
    "MA": "missing authorization",
    "T4": "payer name or identifier missing",
}

FOLLOW_UP_ACTIONS: Final[dict[str, str]] = {
    "C": "please correct and resubmit",
    "N": "resubmission not allowed",
    "P": "please resubmit the original transaction",
    "R": "resubmission allowed",
    "S": "do not resubmit; the inquiry was passed to a third party",
    "W": "please wait 30 days and resubmit",
    "X": "please wait 10 days and resubmit",
    "Y": "do not resubmit; the payer will respond",
}

# What the front desk can do about a reject reason (CORE 259 asks for distinct, actionable text).
REJECT_RESOLUTIONS: Final[dict[str, str]] = {
    "04": "The authorized quantity is used up; ask the payer about a new or extended authorization.",
    "15": "Fill in the missing patient, subscriber or provider details and check again.",
    "33": "Review the inquiry data for typing errors and check again.",
    "35": "The provider is out of network for this plan; tell the patient before the visit.",
    "41": "The payer restricts this inquiry; call the payer to verify coverage.",
    "42": "The payer's system is not answering; try again later.",
    "43": "Check the provider's NPI in the practice settings.",
    "44": "Check the provider's name as registered with the payer.",
    "45": "Check the provider's specialty (taxonomy) as registered with the payer.",
    "46": "Check the provider's phone number as registered with the payer.",
    "47": "Check the provider's state as registered with the payer.",
    "48": "Check the referring provider's identification number.",
    "49": "The payer lists a different primary care physician; confirm the PCP or get a referral.",
    "50": "The provider may not check eligibility with this payer; verify the provider's enrollment.",
    "51": "The payer does not know this provider; verify the provider's enrollment with the payer.",
    "52": "The provider was not enrolled with the plan on the service date; verify enrollment dates.",
    "53": "The service asked about does not fit the provider type; ask about a different service type.",
    "54": "Use a supported procedure code qualifier (HC for CPT/HCPCS, AD for dental).",
    "55": "The payer does not accept this procedure code in an inquiry; ask by service type instead.",
    "56": "Check the service date.",
    "57": "Check the date(s) of service.",
    "58": "Check the date of birth on the patient's record and insurance card.",
    "60": "The date of birth is after the service date; check both dates.",
    "61": "The payer records a date of death before the service date; confirm the patient's details.",
    "62": "The service date is outside what the payer answers for; use a date closer to today.",
    "63": "The payer does not answer for future dates; check again closer to the visit.",
    "64": "Check the patient's member ID on the insurance card.",
    "65": "Check the spelling of the patient's name against the insurance card.",
    "66": "Check the patient's sex on the patient's record.",
    "67": "The payer cannot find the patient; verify the card, name and date of birth.",
    "68": "The payer has more than one patient with this ID; add the date of birth and full name.",
    "69": "The service does not fit the patient's age; confirm the service and the date of birth.",
    "70": "The service does not fit the patient's sex on file; confirm the service and the patient's sex.",
    "71": "The date of birth does not match the payer's records; check it against the card.",
    "72": "Check the member ID on the insurance card (including any prefix).",
    "73": "Check the subscriber's name against the insurance card.",
    "74": "Check the subscriber's sex on the patient's record.",
    "75": "The payer cannot find the subscriber; verify the card, payer, name and date of birth.",
    "76": "The payer has more than one subscriber with this ID; add the date of birth and full name.",
    "77": "The subscriber was found but not the patient; check the dependent's name and date of birth.",
    "78": "The subscriber is not in the group or plan given; check the group number or omit it.",
    "79": "The payer or clearinghouse rejected the submitter identification; check the connection setup.",
    "80": "The payer did not answer in time; try again later.",
    "97": "Check the provider's address as registered with the payer.",
    "98": "The payer considers the service experimental; call the payer before scheduling.",
    "AA": "The payer has no such authorization number; check it.",
    "AE": "The primary care physician must authorize this service; request a referral.",
    "AF": "Check the diagnosis code(s).",
    "AG": "Check the procedure code(s).",
    "AO": "The payer needs more about the patient's condition; call the payer.",
    "CI": "The certification on file does not match the patient; call the payer.",
    "E8": "The payer requires medical review for this service; call the payer.",
    "IA": "Check the format of the authorization number.",
    "MA": "An authorization is required; obtain it before the service.",
    "T4": "The payer name or ID is missing; check the payer selected.",
}

FOLLOW_UP_RESOLUTIONS: Final[dict[str, str]] = {
    "C": "Correct the information and check eligibility again.",
    "N": "Do not resend this inquiry; call the payer to verify coverage.",
    "P": "Send the same inquiry again.",
    "R": "You may send the inquiry again.",
    "S": "Do not resend; the payer forwarded the inquiry to a third party.",
    "W": "Wait 30 days before checking again.",
    "X": "Wait 10 days before checking again.",
    "Y": "Do not resend; the payer will answer later.",
}

# --- NM101 entity identifier ------------------------------------------------------------------------

ENTITY_IDENTIFIERS: Final[dict[str, str]] = {
    "03": "dependent",
    "13": "contracted service provider",
    "1I": "preferred provider organization (PPO)",
    "1P": "provider",
    "2B": "third-party administrator",
    "36": "employer",
    "71": "attending physician",
    "72": "operating physician",
    "73": "other physician",
    "74": "corrected insured",
    "77": "service location",
    "80": "hospital",
    "82": "rendering provider",
    "84": "subscriber's employer",
    "85": "billing provider",
    "87": "pay-to provider",
    "FA": "facility",
    "GP": "gateway provider",
    "GW": "group",
    "I3": "independent physicians association (IPA)",
    "IL": "insured or subscriber",
    "LR": "legal representative",
    "OC": "origin carrier",
    "P3": "primary care provider",
    "P4": "prior insurance carrier",
    "P5": "plan sponsor",
    "PR": "payer",
    "PRP": "primary payer",
    "SEP": "secondary payer",
    "TTP": "tertiary payer",
    "VER": "party performing verification",
    "VN": "vendor",
    "VY": "organization completing configuration change",
    "X3": "utilization management organization",
    "Y2": "managed care organization",
}

# --- REF01 reference identification qualifier -----------------------------------------------------

REF_QUALIFIERS: Final[dict[str, str]] = {
    "0B": "state license number",
    "0F": "subscriber number",
    "18": "plan number",
    "1C": "Medicare provider number",
    "1D": "Medicaid provider number",
    "1J": "facility ID number",
    "1L": "group or policy number",
    "1W": "member identification number",
    "3H": "case number",
    "49": "family unit number",
    "4A": "personal identification number (PIN)",
    "6P": "group number",
    "9F": "referral number",
    "ALS": "alternative list ID",
    "CE": "class of contract code",
    "CLI": "coverage list ID",
    "CT": "contract number",
    "EA": "medical record identification number",
    "EJ": "patient account number",
    "EL": "electronic device PIN",
    "EO": "submitter identification number",
    "F6": "health insurance claim (HIC) number",
    "F8": "original reference number",
    "FO": "drug formulary number",
    "G1": "prior authorization number",
    "GH": "identification card serial number",
    "HJ": "identity card number",
    "HPI": "national provider identifier (NPI)",
    "IF": "issue number",
    "IG": "insurance policy number",
    "JD": "user identification",
    "M7": "medical assistance category",
    "MRC": "eligibility category",
    "N5": "provider plan network identification number",
    "N6": "plan network identification number",
    "N7": "facility network identification number",
    "NQ": "Medicaid recipient identification number",
    "Q4": "prior identifier number",
    "SY": "social security number",
    "TJ": "federal taxpayer identification number",
    "Y4": "agency claim number",
}

# --- DTP01 date/time qualifier ----------------------------------------------------------------------

DTP_QUALIFIERS: Final[dict[str, str]] = {
    "096": "discharge",
    "102": "issue",
    "152": "effective date of change",
    "193": "period start",
    "194": "period end",
    "198": "completion",
    "290": "coordination of benefits",
    "291": "plan",
    "292": "benefit",
    "295": "primary care provider",
    "304": "latest visit or consultation",
    "307": "eligibility",
    "318": "added",
    "338": "Medicare begin",
    "339": "Medicare end",
    "340": "COBRA begin",
    "341": "COBRA end",
    "342": "premium paid to date begin",
    "343": "premium paid to date end",
    "346": "plan begin",
    "347": "plan end",
    "348": "benefit begin",
    "349": "benefit end",
    "356": "eligibility begin",
    "357": "eligibility end",
    "382": "enrollment",
    "435": "admission",
    "442": "date of death",
    "458": "certification",
    "472": "service",
    "539": "policy effective",
    "540": "policy expiration",
    "636": "date of last update",
    "771": "status",
}

# --- INS02 individual relationship ----------------------------------------------------------------

RELATIONSHIPS: Final[dict[str, str]] = {
    "01": "spouse",
    "18": "self",
    "19": "child",
    "20": "employee",
    "21": "unknown",
    "34": "other adult",
    "39": "organ donor",
    "40": "cadaver donor",
    "53": "life partner",
    "G8": "other relationship",
}

# --- III02 with III01 ZZ: CMS place of service ------------------------------------------------------

PLACES_OF_SERVICE: Final[dict[str, str]] = {
    "01": "pharmacy",
    "02": "telehealth (not in the patient's home)",
    "03": "school",
    "04": "homeless shelter",
    "05": "Indian Health Service free-standing facility",
    "06": "Indian Health Service provider-based facility",
    "07": "tribal 638 free-standing facility",
    "08": "tribal 638 provider-based facility",
    "09": "prison or correctional facility",
    "10": "telehealth in the patient's home",
    "11": "office",
    "12": "home",
    "13": "assisted living facility",
    "14": "group home",
    "15": "mobile unit",
    "16": "temporary lodging",
    "17": "walk-in retail health clinic",
    "18": "place of employment / worksite",
    "19": "off-campus outpatient hospital",
    "20": "urgent care facility",
    "21": "inpatient hospital",
    "22": "on-campus outpatient hospital",
    "23": "emergency room - hospital",
    "24": "ambulatory surgical center",
    "25": "birthing center",
    "26": "military treatment facility",
    "27": "outreach site / street",
    "31": "skilled nursing facility",
    "32": "nursing facility",
    "33": "custodial care facility",
    "34": "hospice",
    "41": "ambulance - land",
    "42": "ambulance - air or water",
    "49": "independent clinic",
    "50": "federally qualified health center",
    "51": "inpatient psychiatric facility",
    "52": "psychiatric facility - partial hospitalization",
    "53": "community mental health center",
    "54": "intermediate care facility for individuals with intellectual disabilities",
    "55": "residential substance abuse treatment facility",
    "56": "psychiatric residential treatment center",
    "57": "non-residential substance abuse treatment facility",
    "58": "non-residential opioid treatment facility",
    "60": "mass immunization center",
    "61": "comprehensive inpatient rehabilitation facility",
    "62": "comprehensive outpatient rehabilitation facility",
    "65": "end-stage renal disease treatment facility",
    "66": "programs of all-inclusive care for the elderly (PACE) center",
    "71": "public health clinic",
    "72": "rural health clinic",
    "81": "independent laboratory",
    "99": "other place of service",
}


# --- lookups -------------------------------------------------------------------------------------------


def describe(table: Mapping[str, str], code: str) -> str:
    """The description of ``code`` in ``table``, or ``"unknown code X"`` (never raises)."""
    found = table.get(code)
    if found is not None:
        return found
    return f"unknown code {code}" if code else "no code"


def eligibility_description(code: str) -> str:
    """EB01: ``"1"`` → ``"active coverage"``."""
    return describe(ELIGIBILITY_CODES, code)


def coverage_level_description(code: str) -> str:
    """EB02: ``"IND"`` → ``"individual"``."""
    return describe(COVERAGE_LEVELS, code)


def service_type_description(code: str) -> str:
    """EB03 / EQ01: ``"98"`` → ``"professional (physician) visit - office"``."""
    return describe(SERVICE_TYPES, code)


def insurance_type_description(code: str) -> str:
    """EB04: ``"PR"`` → ``"preferred provider organization (PPO)"``."""
    return describe(INSURANCE_TYPES, code)


def time_period_description(code: str) -> str:
    """EB06 / HSD05: ``"23"`` → ``"calendar year"``."""
    return describe(TIME_PERIODS, code)


def quantity_qualifier_description(code: str) -> str:
    """EB09 / HSD01: ``"VS"`` → ``"visits"``."""
    return describe(QUANTITY_QUALIFIERS, code)


def reject_reason_description(code: str) -> str:
    """AAA03: ``"75"`` → ``"subscriber/insured not found"``."""
    return describe(REJECT_REASONS, code)


def follow_up_description(code: str) -> str:
    """AAA04: ``"C"`` → ``"please correct and resubmit"``."""
    return describe(FOLLOW_UP_ACTIONS, code)


def entity_description(code: str) -> str:
    """NM101: ``"P3"`` → ``"primary care provider"``."""
    return describe(ENTITY_IDENTIFIERS, code)


def ref_qualifier_description(code: str) -> str:
    """REF01: ``"6P"`` → ``"group number"``."""
    return describe(REF_QUALIFIERS, code)


def dtp_qualifier_description(code: str) -> str:
    """DTP01: ``"346"`` → ``"plan begin"``."""
    return describe(DTP_QUALIFIERS, code)


def relationship_description(code: str) -> str:
    """INS02: ``"19"`` → ``"child"``."""
    return describe(RELATIONSHIPS, code)


def is_service_type(code: str) -> bool:
    """Whether ``code`` is a service type code this module knows (current or retired)."""
    return code in SERVICE_TYPES
