"""Small files in each source's real format (SOURCES.md, "Fixture files"), made by the tests."""

from pipelines.catalogue import EU_YEARS, ONS_COLUMNS
from tests.pipelines.conftest import zip_bytes


def ons_row(pcd: str, dointr: str, doterm: str) -> str:
    values = {name: f"{name}-{pcd[-3:]}" for name in ONS_COLUMNS}
    values.update(
        pcd=pcd,
        pcd2=pcd[:4] + " " + pcd[4:],
        pcds=pcd,
        dointr=dointr,
        doterm=doterm,
        lat="57.101474",
        long="-2.242851",
        imd="6808",
    )
    quoted = {"lat", "long", "imd"}
    return ",".join(values[name] if name in quoted else f'"{values[name]}"' for name in ONS_COLUMNS)


def ons_zip(month: str, lines: list[str]) -> bytes:
    """An ONSPD release: the CSV in Data/, its .txt twin, and the usual debris."""
    csv = ("\r\n".join([",".join(f'"{name}"' for name in ONS_COLUMNS), *lines]) + "\r\n").encode()
    return zip_bytes(
        {
            "Documents/": b"",
            "User Guide/": b"",
            "Data/.DS_Store": b"\0\0\0\1Bud1",
            f"__MACOSX/Data/._ONSPD_{month}_UK.csv": b"\0\5\26\7",
            f"Data/ONSPD_{month}_UK.csv": csv,
            f"Data/ONSPD_{month}_UK.txt": csv,
        }
    )


ONS_MAY_2019 = ons_zip(
    "MAY_2019",
    [ons_row("AB1 0AA", "198001", ""), ons_row("AB1 0AB", "198001", "199606")],
)
ONS_JUL_2019 = ons_zip(
    "JUL_2019",
    [
        ons_row("AB1 0AA", "200001", "199606"),
        ons_row("AB1 0AB", "198001", "199606"),
        ons_row("AB1 0AD", "198001", ""),
    ],
)

REFERENCE_POSTCODES = (
    b'"Postcode","Local authority district code","Local authority district name",'
    b'"Local Enterprise Partnership (LEP1) code","Local Enterprise Partnership (LEP1) name",'
    b'"Local Enterprise Partnership (LEP2) code","Local Enterprise Partnership (LEP2) name",'
    b'"Region code","Region name","National grid ref easting","National grid ref northing",'
    b'"Date of introduction","Date of termination"\n'
    b'"AB10 1AA","S12000033","Aberdeen City","","","","","S99999999","Scotland",'
    b'"394235","806529","1980-01-01","1990-06-01"\n'
    b'"HU4 7SW","E06000011","East Riding of Yorkshire","E37000018","Humber","",""'
    b',"E12000003","Yorkshire and The Humber","505000","428000","2001-06-01",""\n'
)

BACI = b"t,hs6,i,j,v,q\n1995,010519,4,251,1.27,0.126\n1995,010519,004,381,11.6,004"


def eu_membership() -> bytes:
    def row(country: str, iso3: str, first_year: int) -> str:
        cells = ["EUN" if int(year) >= first_year else "" for year in EU_YEARS]
        return ",".join([country, iso3, *cells])

    return (
        "\n".join(
            [
                ",".join(["Country", "ISO3", *EU_YEARS]),
                row("Austria", "AUT", 1995),
                row("Belgium", "BEL", 1958),
                row("Bulgaria", "BGR", 2007),
            ]
        )
        + "\n"
    ).encode()


# Windows-1252 (the source's declared encoding), bare CR line ends, no final line end.
COMTRADE = (
    b"ctyCode,cty Name English,cty Fullname English,Cty Abbreviation,Cty Comments,"
    b"ISO2-digit Alpha,ISO3-digit Alpha,Start Valid Year,End Valid Year\r"
    b"0,World,World,World,,WL,WLD,1962,2061\r"
    b"4,Afghanistan,Afghanistan,Afghanistan,,AF,AFG,1962,2061\r"
    b"384,C\xf4te d'Ivoire,C\xf4te d'Ivoire,C\xf4te d'Ivoire,,CI,CIV,1962,2061\r"
    b'899,"Areas, nes","Areas, not elsewhere specified","Areas, nes",,,,1962,2061\r'
    b"918,European Union,European Union,EU,,,EU2,,"
)

BOUND_RATES = (
    b"NomenCode,Reporter_ISO_N,ProductCode,BoundRate,Nbr_Total_Lines\n"
    b'"H0","004","010111","10","2"\n'
)
BOUND_RATES_MULTIPLE_NOMEN_CODES = (
    b"NomenCode,Reporter_ISO_N,ProductCode,BoundRate,Nbr_Total_Lines\n"
    b'"H0","008","010111","10","2"\n'
    b'"H1","008","010111","5","2"\n'
    b'"H2","008","010111","7","2"\n'
)

TARIFF = (
    b"Reporter_ISO_N,Year,ProductCode,Partner_ISO_N,DutyType,SimpleAverage,Nbr_Total_Lines\r\n"
    b'"048", 1999,"0201","000",AHS,5,20\r\n'
    b'"262",2005,"0201","380",BND,40,40\r\n'
    b'"266", 1998,"0201","000",AHS,20,20\r\n'
)


def hmrc_line(*fields: str) -> bytes:
    return "\t".join(fields).encode("mac-roman") + b"\r\n"


# A zip of zips (SOURCES.md §4): exporters1601 holds two rows and a junk line, exporters1602
# one row whose address is quoted; names in mac-roman (é is 0x8e there).
HMRC_EXPORTERS = zip_bytes(
    {
        "exporters1601.zip": zip_bytes(
            {
                "exporters1601": hmrc_line(
                    "201601",
                    "1",
                    "ABC Company Ltd ",
                    "1 - 3  Street",
                    "Avenue",
                    "",
                    "",
                    "",
                    "AB1 2CD",
                    "01012100",
                    "02023000",
                )
                + b"junk line with spaces only\r\n"
                + hmrc_line(
                    "201601",
                    "1",
                    "AAA Limit\u00e9d",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "ZZ9 9ZZ",
                    "",
                    "",
                )
            }
        ),
        "exporters1602.zip": zip_bytes(
            {
                "exporters1602": hmrc_line(
                    "201602",
                    "1",
                    "BBB Limited",
                    '"AAA HOUSE"',
                    "Town",
                    "",
                    "",
                    "",
                    "xy1 1xy",
                    "84713000",
                )
            }
        ),
    }
)


def spire_csv(header: str, *lines: str) -> bytes:
    """A SPIRE export: every field quoted, NULL as an unquoted empty value."""
    return ("\n".join([header, *lines]) + "\n").encode()


SPIRE_BATCHES = spire_csv(
    '"id","batch_ref","status","start_date","end_date","approve_date","release_date",'
    '"staging_date"',
    '"1","C1","RELEASED",,,"2019-3-12 00:00:00","2019-3-13 10:00:00",',
    '"2","B2","STAGING","2019-1-1 00:00:00","2019-1-31 00:00:00","2019-2-1 09:30:00",,',
)
SPIRE_APPLICATIONS = spire_csv(
    '"ela_grp_id","case_type","case_sub_type","initial_processing_time","case_closed_date",'
    '"withheld_status","batch_id","ela_id"',
    '"10","SIEL","TEMPORARY","5","2019-3-1 00:00:00",,"1","100"',
    '"11","OGEL",,"3","2019-3-2 00:00:00","PENDING","2",',
)
SPIRE_FOOTNOTES = spire_csv(
    '"id","text","status"',
    '"1","a footnote\nover two lines","CURRENT"',
    '"2",,"DELETED"',
)


# Inputs of the World Bank transform, small enough to work its rows out by hand
# (tests/pipelines/test_world_bank_tariffs.py).
TRANSFORM_COMTRADE = (
    b"ctyCode,cty Name English,cty Fullname English,Cty Abbreviation,Cty Comments,"
    b"ISO2-digit Alpha,ISO3-digit Alpha,Start Valid Year,End Valid Year\n"
    b"40,Austria,Austria,Austria,,AT,AUT,1962,2061\n"
    b"56,Belgium,Belgium,Belgium,,BE,BEL,1999,2061\n"
    b"250,France,France,France,,FR,FRA,1962,2061\n"
    b"251,France,France (incl. Monaco),France,,FR,FRAXM,1962,2061\n"
    b"231,Ethiopia,Ethiopia,Ethiopia,,ET,ETH,1993,2061\n"
    b"729,Sudan,Sudan,Sudan,,SD,SDN,2012,2061\n"
    b"710,South Africa,South Africa,South Africa,,ZA,ZAF,2000,2061\n"
    b"840,USA,United States of America,USA,,US,USA,1981,2061\n"
    b"918,European Union,European Union,EU,,,,,\n"
)


def transform_eu_membership() -> bytes:
    def row(country: str, iso3: str, first_year: int) -> str:
        return ",".join([country, iso3, *("EUN" if int(y) >= first_year else "" for y in EU_YEARS)])

    lines = [
        ",".join(["Country", "ISO3", *EU_YEARS]),
        row("Austria", "AUT", 1995),
        row("Belgium", "BEL", 1958),
        row("France", "FRA", 1958),
    ]
    return ("\n".join(lines) + "\n").encode()


TRANSFORM_BOUND_RATES = (
    b"NomenCode,Reporter_ISO_N,ProductCode,BoundRate,Nbr_Total_Lines\n"
    b'"H0","840","000201","12","2"\n'
)
TRANSFORM_TARIFFS = (
    b"Reporter_ISO_N,Year,ProductCode,Partner_ISO_N,DutyType,SimpleAverage,Nbr_Total_Lines\n"
    b"840,2000,201,0,MFN,5,1\n"  # the USA's MFN rate against the world
    b"840,2001,201,710,AHS,2,1\n"  # the USA's applied rate for South Africa
    b"918,2000,201,840,AHS,3,1\n"  # the EU's applied rate for the USA
    b"918,2002,201,710,AHS,4,1\n"  # the EU's applied rate for South Africa
    b"710,2000,201,40,AHS,6,1\n"  # South Africa's for Austria
    b"710,2000,201,56,AHS,8,1\n"  # ... and Belgium
    b"736,2000,201,840,AHS,9,1\n"  # Sudan under its old code
    b"231,2000,201,729,AHS,50,1\n"  # Ethiopia's report of Sudan: left out
    b"840,2000,201,0,BND,40,1\n"  # bound rates in the tariff file: not used
    b"710,2000,301,0,MFN,1.5,1\n"
    b"840,1999,401,0,MFN,7,1\n"  # before the first year: not a product of the output
)


# Companies House bulk accounts (SOURCES.md §4): an iXBRL document (FRC 2019 taxonomy, none
# of the three the loader names), an XBRL one (UK GAAP 2004), and one that is not XML.
ACCOUNTS_IXBRL = b"""<?xml version="1.0" encoding="UTF-8"?>
<html xmlns="http://www.w3.org/1999/xhtml" xmlns:ix="http://www.xbrl.org/2013/inlineXBRL"
  xmlns:xbrli="http://www.xbrl.org/2003/instance"
  xmlns:core="http://xbrl.frc.org.uk/fr/2019-01-01/core"
  xmlns:bus="http://xbrl.frc.org.uk/cd/2019-01-01/business">
<head><title>BadCorp2</title></head>
<body>
<ix:header><ix:resources>
  <xbrli:context id="cfwd_31_03_2020"><xbrli:entity><xbrli:identifier
    scheme="http://www.companieshouse.gov.uk/">12345</xbrli:identifier></xbrli:entity>
    <xbrli:period><xbrli:instant>2020-03-31</xbrli:instant></xbrli:period></xbrli:context>
  <xbrli:context id="cfwd_31_03_2019"><xbrli:entity><xbrli:identifier
    scheme="http://www.companieshouse.gov.uk/">12345</xbrli:identifier></xbrli:entity>
    <xbrli:period><xbrli:instant>2019-03-31</xbrli:instant></xbrli:period></xbrli:context>
  <xbrli:context id="cfwd_31_03_2020_WithinOneYear"><xbrli:entity><xbrli:identifier
    scheme="http://www.companieshouse.gov.uk/">12345</xbrli:identifier></xbrli:entity>
    <xbrli:period><xbrli:instant>2020-03-31</xbrli:instant></xbrli:period></xbrli:context>
  <xbrli:context id="year_2020"><xbrli:entity><xbrli:identifier
    scheme="http://www.companieshouse.gov.uk/">12345</xbrli:identifier></xbrli:entity>
    <xbrli:period><xbrli:startDate>2019-04-01</xbrli:startDate>
    <xbrli:endDate>2020-03-31</xbrli:endDate></xbrli:period></xbrli:context>
</ix:resources></ix:header>
<p>Registered number <ix:nonNumeric name="bus:UKCompaniesHouseRegisteredNumber"
  contextRef="year_2020">12345</ix:nonNumeric></p>
<h1><ix:nonNumeric name="bus:EntityCurrentLegalOrRegisteredName" contextRef="year_2020"
  >BadCorp2 Limited</ix:nonNumeric></h1>
<p>Balance sheet at <ix:nonNumeric name="bus:BalanceSheetDate" contextRef="year_2020"
  >31 March 2020</ix:nonNumeric></p>
<p>Dormant: <ix:nonNumeric name="bus:EntityDormantTruefalse" contextRef="year_2020"
  >false</ix:nonNumeric></p>
<p>Employees: <ix:nonFraction name="core:AverageNumberEmployeesDuringPeriod"
  contextRef="year_2020" unitRef="pure" decimals="0">1</ix:nonFraction></p>
<table>
<tr><td>Current assets</td>
  <td><ix:nonFraction name="core:CurrentAssets" contextRef="cfwd_31_03_2020"
    unitRef="GBP" decimals="0">96,264</ix:nonFraction></td>
  <td><ix:nonFraction name="core:CurrentAssets" contextRef="cfwd_31_03_2019"
    unitRef="GBP" decimals="0">96,264</ix:nonFraction></td></tr>
<tr><td>Creditors</td>
  <td><ix:nonFraction name="core:Creditors" contextRef="cfwd_31_03_2020_WithinOneYear"
    unitRef="GBP" decimals="-3" scale="3" sign="-">1,234</ix:nonFraction></td>
  <td>-</td></tr>
<tr><td>Net current assets</td>
  <td><ix:nonFraction name="core:NetCurrentAssetsLiabilities" contextRef="cfwd_31_03_2020"
    unitRef="GBP" decimals="0">96,264</ix:nonFraction></td>
  <td><ix:nonFraction name="core:NetCurrentAssetsLiabilities" contextRef="cfwd_31_03_2019"
    unitRef="GBP" decimals="0">96,264</ix:nonFraction></td></tr>
<tr><td>Equity</td>
  <td><ix:nonFraction name="core:Equity" contextRef="cfwd_31_03_2020"
    unitRef="GBP" decimals="0">96,264</ix:nonFraction></td>
  <td><ix:nonFraction name="core:Equity" contextRef="cfwd_31_03_2019"
    unitRef="GBP" decimals="0">96,264</ix:nonFraction></td></tr>
</table>
</body></html>
"""

ACCOUNTS_XBRL = b"""<?xml version="1.0" encoding="UTF-8"?>
<xbrl xmlns="http://www.xbrl.org/2003/instance"
  xmlns:pt="http://www.xbrl.org/uk/fr/gaap/pt/2004-12-01"
  xmlns:ae="http://www.xbrl.org/uk/fr/gcd/2004-12-01">
  <context id="y2016"><entity><identifier scheme="http://www.companieshouse.gov.uk/"
    >1234</identifier></entity><period><instant>2016-07-31</instant></period></context>
  <context id="y2015"><entity><identifier scheme="http://www.companieshouse.gov.uk/"
    >1234</identifier></entity><period><instant>2015-07-31</instant></period></context>
  <ae:EntityCurrentLegalName contextRef="y2016">BadCorp Limited</ae:EntityCurrentLegalName>
  <ae:CompaniesHouseRegisteredNumber contextRef="y2016">01234</ae:CompaniesHouseRegisteredNumber>
  <ae:BalanceSheetDate contextRef="y2016">2016-07-31</ae:BalanceSheetDate>
  <ae:CompanyNotDormant contextRef="y2016">true</ae:CompanyNotDormant>
  <pt:FixedAssets contextRef="y2016" unitRef="GBP" decimals="0">251044</pt:FixedAssets>
  <pt:FixedAssets contextRef="y2015" unitRef="GBP" decimals="0">251160</pt:FixedAssets>
  <pt:TangibleFixedAssets contextRef="y2016" unitRef="GBP" decimals="0">1</pt:TangibleFixedAssets>
  <pt:Debtors contextRef="y2015" unitRef="GBP" decimals="0">-</pt:Debtors>
  <pt:ProfitLossForPeriod contextRef="y2016" unitRef="GBP" decimals="0"
    >-120</pt:ProfitLossForPeriod>
</xbrl>
"""


def accounts_zip(documents: dict[str, bytes]) -> bytes:
    """A bulk accounts zip: its folder entry, the documents and macOS resource forks."""
    members = {"test_datafile_1/": b""}
    for name, data in documents.items():
        members[f"test_datafile_1/{name}"] = data
        members[f"__MACOSX/test_datafile_1/._{name}"] = b"\0\5\26\7"
    return zip_bytes(members)


ACCOUNTS = accounts_zip(
    {
        "Prod223_2798_12345_20200331.html": ACCOUNTS_IXBRL,
        "Prod223_1859_1234_20170227.xml": ACCOUNTS_XBRL,
        "Prod223_2798_99999_20200331.html": b"<html><body><p>cut off in the middle",
    }
)
