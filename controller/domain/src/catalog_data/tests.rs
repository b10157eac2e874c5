use super::*;
use crate::error::ErrorCode;

fn beijing() -> Catalog {
    Catalog::from_toml(BEIJING_2023_TOML).expect("beijing-2023.toml loads with zero errors")
}

fn datong() -> Catalog {
    Catalog::from_toml(DATONG_2023_TOML).expect("datong-2023.toml loads with zero errors")
}

fn entry<'a>(c: &'a Catalog, code: &str) -> &'a CatalogEntry {
    c.get(code)
        .unwrap_or_else(|| panic!("{code} in {}", c.id()))
}

/// (row, field, code) of every issue, for compact assertions.
fn issues(err: &CatalogImportError) -> Vec<(Option<usize>, Option<&str>, &'static str)> {
    err.issues
        .iter()
        .map(|i| (i.row, i.field.as_deref(), i.problem.code()))
        .collect()
}

fn check(format: CatalogFormat, text: &str, expected: &[(Option<usize>, Option<&str>, &str)]) {
    match Catalog::parse(format, text) {
        Ok(c) => assert!(expected.is_empty(), "accepted {} items", c.len()),
        Err(e) => assert_eq!(issues(&e), expected, "{e:#?}"),
    }
}

#[test]
fn builtin_catalogs_load() {
    let b = Catalog::beijing_2023();
    assert_eq!(b, beijing());
    assert_eq!(b.id().as_str(), "beijing-2023");
    assert_eq!(b.len(), 23);
    let codes: Vec<&str> = b.entries().iter().map(|e| e.code().as_str()).collect();
    let expected: Vec<String> = (1001..=1023).map(|n: u32| n.to_string()).collect();
    assert_eq!(codes, expected);
    assert_eq!(b.price_basis(), PriceBasis::Maximum);
    assert!(b.source().expect("source").as_str().contains("003_"));

    let d = Catalog::datong_2023();
    assert_eq!(d, datong());
    assert_eq!(d.id().as_str(), "datong-2023");
    // Every third-level ZW code of 000 附件1.
    assert_eq!(d.len(), 86);
    assert!(
        d.entries()
            .iter()
            .all(|e| e.code().as_str().starts_with("ZW"))
    );
    assert_eq!(d.entries()[0].code().as_str(), "ZW010101");
    assert_eq!(d.entries()[85].code().as_str(), "ZW021801");
    assert!(d.get("ZW0102019").is_some(), "9-digit code kept as printed");
    assert_eq!(d.price_basis(), PriceBasis::Tender);
    assert!(d.source().expect("source").as_str().contains("000_"));
}

#[test]
fn beijing_prices() {
    let b = beijing();
    for (code, fen) in [
        ("1001", 1402),
        ("1002", 4115),
        ("1003", 35423),
        ("1010", 800),
        ("1023", 9886),
    ] {
        assert_eq!(entry(&b, code).price(), Some(Fen(fen)), "{code}");
    }
    assert!(
        b.entries()
            .iter()
            .all(|e| e.billing() == BillingMode::Monthly)
    );
    assert!(
        b.entries().iter().all(|e| e.arch().is_none()),
        "包含 X86、ARM、C86"
    );
    assert_eq!(b.items().len(), 23);
    let item = entry(&b, "1001").to_item(b.id()).expect("priced");
    assert_eq!(item.price, Fen(1402));
    assert_eq!(item.unit.as_str(), "1 CPU");
}

/// The transcription reproduces the table's own total: Σ price × 权值 is the
/// "采购项目最高限价：79.0430 元/月" printed under 003 §3.1.3.
#[test]
fn beijing_weighted_price() {
    let b = beijing();
    let weights: u32 = b.entries().iter().filter_map(|e| e.weight_percent()).sum();
    assert_eq!(weights, 100);
    let weighted: u64 = b
        .entries()
        .iter()
        .map(|e| e.price().expect("priced").0 * u64::from(e.weight_percent().expect("weight")))
        .sum();
    // fen × percent: 790430 / 100 / 100 = 79.0430 yuan.
    assert_eq!(weighted, 790_430);
}

#[test]
fn datong_rows() {
    let d = datong();
    assert!(
        d.entries().iter().all(|e| e.price().is_none()),
        "招标价格 column is blank"
    );
    assert!(d.items().is_empty());
    assert!(
        d.entries()
            .iter()
            .all(|e| e.billing() == BillingMode::Yearly)
    );
    assert_eq!(entry(&d, "ZW010201").arch(), Some(ArchTag::X86));
    assert_eq!(entry(&d, "ZW010202").arch(), Some(ArchTag::Xinchuang));
    assert_eq!(entry(&d, "ZW0102022").arch(), None);
    assert_eq!(entry(&d, "ZW010202").unit().printed(), "核/年");
    assert_eq!(
        entry(&d, "ZW010202").unit().period(),
        Some(BillingMode::Yearly)
    );
    assert_eq!(entry(&d, "ZW021501").unit().base(), "VM/5个");
    assert!(
        entry(&d, "ZW021404").note().is_some(),
        "increment price kept as a note"
    );
}

#[test]
fn shapes() {
    let b = beijing();
    let vcpu = entry(&b, "1001");
    assert_eq!(vcpu.shape(), Some(&ShapeLimits::beijing_2023()));
    assert_eq!(vcpu.vcpu_per_core_max(), Some(4));
    assert!(vcpu.check_shape(16, 64).is_ok());
    assert!(vcpu.check_shape(1, 1).is_ok());
    let e = vcpu.check_shape(17, 4).expect_err("17 cores");
    assert_eq!(e.code(), "SHAPE_VCPU_NOT_ALLOWED");
    assert_eq!(
        vcpu.check_shape(4, 65).map_err(|e| e.code()),
        Err("SHAPE_MEMORY_NOT_ALLOWED")
    );

    let d = datong();
    let vcpu = entry(&d, "ZW010201");
    assert_eq!(vcpu.shape(), Some(&ShapeLimits::datong_2023()));
    assert_eq!(
        vcpu.check_shape(3, 4).map_err(|e| e.code()),
        Err("SHAPE_VCPU_NOT_ALLOWED")
    );
    assert!(vcpu.check_shape(64, 512).is_ok());
    assert_eq!(
        vcpu.check_shape(66, 4).map_err(|e| e.code()),
        Err("SHAPE_VCPU_NOT_ALLOWED")
    );
    assert_eq!(
        vcpu.check_shape(4, 514).map_err(|e| e.code()),
        Err("SHAPE_MEMORY_NOT_ALLOWED")
    );
    assert!(entry(&d, "ZW010205").shape().is_none());

    for arch in Architecture::ALL {
        assert_eq!(
            b.vm_shape(arch),
            Some(ShapeLimits::beijing_2023()),
            "{arch}"
        );
        assert_eq!(d.vm_shape(arch), Some(ShapeLimits::datong_2023()), "{arch}");
    }
}

#[test]
fn resource_mapping() {
    let b = beijing();
    let check_map = |code: &str, measure, quantity, class: Option<&str>, kind| {
        let r = entry(&b, code).resource();
        assert_eq!(
            (
                r.measure,
                r.quantity,
                r.class.as_ref().map(|c| c.as_str()),
                r.kind
            ),
            (measure, quantity, class, kind),
            "{code}"
        );
    };
    check_map("1001", Measure::Vcpu, 1, None, Some(ResourceKind::Vm));
    check_map("1002", Measure::MemoryGib, 1, None, Some(ResourceKind::Vm));
    check_map(
        "1003",
        Measure::Count,
        1,
        Some("config_1"),
        Some(ResourceKind::BareMetal),
    );
    check_map(
        "1011",
        Measure::StorageGib,
        100,
        Some("standard"),
        Some(ResourceKind::Volume),
    );
    check_map(
        "1012",
        Measure::StorageGib,
        100,
        Some("performance"),
        Some(ResourceKind::Volume),
    );
    check_map("1013", Measure::StorageGib, 1024, Some("static"), None);
    check_map(
        "1014",
        Measure::BackupGib,
        100,
        Some("local"),
        Some(ResourceKind::BackupPolicy),
    );
    check_map(
        "1016",
        Measure::BandwidthMbps,
        1,
        None,
        Some(ResourceKind::Eip),
    );
    check_map("1017", Measure::PublicIp, 1, None, Some(ResourceKind::Eip));
    check_map(
        "1018",
        Measure::Count,
        1,
        None,
        Some(ResourceKind::LoadBalancer),
    );
    check_map(
        "1023",
        Measure::Count,
        1,
        None,
        Some(ResourceKind::WafPolicy),
    );

    // SPEC §6: unit price × quantity × time. 3 × 100 GB for a year of 1011.
    assert_eq!(entry(&b, "1011").charge(3, 12), Some(Fen(2860 * 36)));
    assert_eq!(entry(&datong(), "ZW010201").charge(1, 1), None);
}

#[test]
fn units() {
    let check_unit = |printed: &str, expected: Option<(u32, &str, Option<BillingMode>)>| {
        let got = Unit::parse(printed).map(|u| (u.count(), u.base(), u.period()));
        assert_eq!(got, expected, "{printed}");
    };
    check_unit("100 GB", Some((100, "GB", None)));
    check_unit("1 IP（内网）", Some((1, "IP（内网）", None)));
    check_unit("1 IP(内网)", Some((1, "IP（内网）", None)));
    check_unit("1Mb 带宽", Some((1, "Mb带宽", None)));
    check_unit("核/年", Some((1, "核", Some(BillingMode::Yearly))));
    check_unit("VM/5个/年", Some((1, "VM/5个", Some(BillingMode::Yearly))));
    check_unit("元/年", Some((1, "元", Some(BillingMode::Yearly))));
    check_unit("0 GB", None);
    check_unit("斤", None);
    check_unit("", None);
}

#[test]
fn round_trips() {
    for c in [beijing(), datong()] {
        for format in [CatalogFormat::Json, CatalogFormat::Toml, CatalogFormat::Csv] {
            let text = c.write(format);
            let back = Catalog::parse(format, &text)
                .unwrap_or_else(|e| panic!("{} as {format}: {e:#?}", c.id()));
            assert_eq!(back, c, "{} as {format}", c.id());
        }
    }
}

#[test]
fn json_numbers_are_read_as_written() {
    let json = r#"{"id":"op-1","name":"测试目录","items":[
        {"code":"A1","name":"vCPU","unit":"1 核","price":14.02,"billing":"monthly",
         "measure":"vcpu","quantity":1,"vcpu_min":1,"vcpu_max":8,"vcpu_step":1,
         "memory_min_gib":1,"memory_max_gib":32,"memory_step_gib":1,"note":null}]}"#;
    let c = Catalog::from_json(json).expect("valid");
    assert_eq!(c.price_basis(), PriceBasis::Agreed);
    let e = entry(&c, "A1");
    assert_eq!(e.price(), Some(Fen(1402)));
    assert!(e.check_shape(8, 32).is_ok());
    assert!(e.check_shape(9, 32).is_err());
    assert!(e.note().is_none());
}

const CSV_HEAD: &str = "# id: op-csv\n# name: 运营商目录\n# price_basis: agreed\n\
code,name,unit,price,billing,measure,quantity,class,vcpu_min,vcpu_max,vcpu_step,memory_min_gib,memory_max_gib,memory_step_gib\n";

#[test]
fn csv_good_file() {
    let text = format!(
        "\u{feff}{CSV_HEAD}\
C1,vCPU,1 核,14.02,monthly,vcpu,1,,2,64,2,2,512,2\n\
C2,\"普通存储, 100 GB\",100 GB,28.60,monthly,storage_gib,100,standard,,,,,,\n\
,,,,,,,,,,,,,\n"
    );
    let c = Catalog::from_csv(&text).expect("valid");
    assert_eq!(c.id().as_str(), "op-csv");
    assert_eq!(c.len(), 2);
    assert_eq!(entry(&c, "C2").name().as_str(), "普通存储, 100 GB");
    assert_eq!(entry(&c, "C1").shape(), Some(&ShapeLimits::datong_2023()));
}

/// Several broken rows: every problem comes back, with its row, line and field,
/// and no catalog is returned.
#[test]
fn csv_bad_rows_report_everything() {
    let text = format!(
        "{CSV_HEAD}\
C1,vCPU,1 核,14.02,monthly,vcpu,1,,2,64,2,2,512,2\n\
C2,内存,1 GB,abc,monthly,memory_gib,1,,,,,,,\n\
C1,重复,1 GB,1,monthly,memory_gib,1,,,,,,,\n\
c-4,坏编码,斤,1,weekly,disk,0,,,,,,,\n\
C5,存储,100 GB,1.234,monthly,storage_gib,1,,,,,,,\n\
C6,半个形状,1 核,1,monthly,vcpu,1,,2,64,,,,\n\
C7,按年,核/年,1,monthly,vcpu,1,,,,,,,\n"
    );
    let err = Catalog::from_csv(&text).expect_err("broken rows");
    let row = |n| Some(n);
    assert_eq!(
        issues(&err),
        vec![
            (row(2), Some("price"), "CATALOG_ROW_PRICE_INVALID"),
            (row(3), Some("code"), "CATALOG_ROW_CODE_DUPLICATE"),
            (row(4), Some("code"), "CATALOG_ROW_CODE_INVALID"),
            (row(4), Some("unit"), "CATALOG_ROW_UNIT_UNKNOWN"),
            (row(4), Some("billing"), "CATALOG_ROW_BILLING_INVALID"),
            (row(4), Some("measure"), "CATALOG_ROW_RESOURCE_INVALID"),
            (row(4), Some("quantity"), "CATALOG_ROW_RESOURCE_INVALID"),
            (row(5), Some("price"), "CATALOG_ROW_PRICE_INVALID"),
            (row(5), Some("class"), "CATALOG_ROW_RESOURCE_INVALID"),
            (row(6), Some("vcpu_step"), "CATALOG_ROW_SHAPE_INVALID"),
            (row(6), Some("memory_min_gib"), "CATALOG_ROW_SHAPE_INVALID"),
            (row(6), Some("memory_max_gib"), "CATALOG_ROW_SHAPE_INVALID"),
            (row(6), Some("memory_step_gib"), "CATALOG_ROW_SHAPE_INVALID"),
            (row(7), Some("unit"), "CATALOG_ROW_BILLING_MISMATCH"),
        ]
    );
    // Lines: 3 header lines, the column row on line 4, data row 1 on line 5.
    assert_eq!(err.issues[0].line, Some(6));
    assert_eq!(err.issues[0].item_code.as_deref(), Some("C2"));
    match &err.issues[1].problem {
        ImportProblem::RowCodeDuplicate { first_row, .. } => assert_eq!(*first_row, 1),
        other => panic!("{other:?}"),
    }
    // English and Chinese messages both say where.
    let first = &err.issues[0];
    assert!(
        first
            .to_string()
            .starts_with("row 2, line 6, item C2, field `price`"),
        "{first}"
    );
    assert!(
        first.message_zh().starts_with("第 2 项（文件第 6 行）"),
        "{}",
        first.message_zh()
    );
    assert!(first.message_zh().contains("abc"));
    assert_eq!(err.code(), "CATALOG_IMPORT_INVALID");
    assert!(
        err.message_zh().contains("14 处错误"),
        "{}",
        err.message_zh()
    );
}

#[test]
fn quantity_must_match_unit() {
    let text = format!("{CSV_HEAD}S1,存储,100 GB,1,monthly,storage_gib,1,standard,,,,,,\n");
    let err = Catalog::from_csv(&text).expect_err("100 GB with quantity 1");
    assert_eq!(
        issues(&err),
        vec![(Some(1), Some("quantity"), "CATALOG_ROW_RESOURCE_INVALID")]
    );
    assert!(
        err.issues[0].to_string().contains("100"),
        "{}",
        err.issues[0]
    );
}

#[test]
fn csv_header_problems() {
    let text = "# name: 目录\ncode,name,unit,billing,colour\nA,a,个,yearly,red\n";
    check(
        CatalogFormat::Csv,
        text,
        &[
            (None, Some("colour"), "CATALOG_HEADER_FIELD_UNKNOWN"),
            (None, Some("measure"), "CATALOG_HEADER_FIELD_MISSING"),
            (None, Some("id"), "CATALOG_HEADER_FIELD_MISSING"),
            (Some(1), Some("measure"), "CATALOG_ROW_FIELD_MISSING"),
        ],
    );
    check(
        CatalogFormat::Csv,
        "# id: x\n# name: y\ncode,name,unit,billing,measure\n",
        &[(None, None, "CATALOG_EMPTY")],
    );
    check(
        CatalogFormat::Csv,
        "# id: x\n# name: y\ncode,name,unit,billing,measure\nA,a,个,yearly,count,extra\n",
        &[(Some(1), None, "CATALOG_ROW_FIELD_COUNT")],
    );
}

#[test]
fn toml_and_json_problems() {
    let toml = "id = \"t\"\nname = \"n\"\ncolour = \"red\"\n[[items]]\ncode = \"A\"\nname = \"a\"\nunit = \"个\"\nbilling = \"yearly\"\nmeasure = \"count\"\nshape = [1, 2]\nweight_percent = 101\narch = \"mips\"\n";
    check(
        CatalogFormat::Toml,
        toml,
        &[
            (None, Some("colour"), "CATALOG_HEADER_FIELD_UNKNOWN"),
            (Some(1), Some("shape"), "CATALOG_ROW_FIELD_UNKNOWN"),
            (Some(1), Some("arch"), "CATALOG_ROW_ARCH_INVALID"),
            (
                Some(1),
                Some("weight_percent"),
                "CATALOG_ROW_WEIGHT_INVALID",
            ),
        ],
    );
    let err = Catalog::from_toml("id = \"t\"\nname = \n").expect_err("syntax");
    assert_eq!(issues(&err), vec![(None, None, "CATALOG_SYNTAX_INVALID")]);
    assert_eq!(err.issues[0].line, Some(2));

    let json = r#"{"id":"bad id","name":"n","items":[{"code":"A","name":"a","unit":"个","billing":"yearly","measure":"count","category":["x"]}, 7]}"#;
    check(
        CatalogFormat::Json,
        json,
        &[
            (Some(2), None, "CATALOG_ROW_NOT_RECORD"),
            (None, Some("id"), "CATALOG_HEADER_FIELD_INVALID"),
            (Some(1), Some("category"), "CATALOG_ROW_FIELD_TYPE"),
        ],
    );
    check(
        CatalogFormat::Json,
        "[1]",
        &[(None, None, "CATALOG_SYNTAX_INVALID")],
    );
    check(
        CatalogFormat::Json,
        r#"{"id":"x","name":"y"}"#,
        &[(None, Some("items"), "CATALOG_HEADER_FIELD_MISSING")],
    );
}

#[test]
fn shape_rules() {
    let base = "code,name,unit,billing,measure,quantity,class,vcpu_min,vcpu_max,vcpu_step,memory_min_gib,memory_max_gib,memory_step_gib,vcpu_per_core_max";
    let text = format!(
        "# id: s\n# name: s\n{base}\n\
A,a,GB,monthly,storage_gib,1,standard,1,16,1,1,64,1,\n\
B,b,核,monthly,vcpu,1,,16,1,1,1,64,1,\n\
C,c,GB,monthly,memory_gib,1,,1,16,1,1,64,1,4\n\
D,d,核,monthly,vcpu,1,,x,16,1,1,64,1,0\n"
    );
    check(
        CatalogFormat::Csv,
        &text,
        &[
            (Some(1), Some("vcpu_min"), "CATALOG_ROW_SHAPE_INVALID"),
            (Some(2), Some("vcpu_min"), "CATALOG_ROW_SHAPE_INVALID"),
            (
                Some(3),
                Some("vcpu_per_core_max"),
                "CATALOG_ROW_SHAPE_INVALID",
            ),
            (Some(4), Some("vcpu_min"), "CATALOG_ROW_SHAPE_INVALID"),
            (
                Some(4),
                Some("vcpu_per_core_max"),
                "CATALOG_ROW_SHAPE_INVALID",
            ),
        ],
    );
}

#[test]
fn size_limits() {
    let big = " ".repeat(MAX_TEXT_BYTES + 1);
    check(
        CatalogFormat::Csv,
        &big,
        &[(None, None, "CATALOG_TOO_LARGE")],
    );
    let mut text = String::from("# id: x\n# name: y\ncode,name,unit,billing,measure\n");
    for i in 0..=MAX_ROWS {
        text.push_str(&format!("A{i},a,个,yearly,count\n"));
    }
    check(
        CatalogFormat::Csv,
        &text,
        &[(None, None, "CATALOG_TOO_MANY_ROWS")],
    );
}

#[test]
fn formats_from_extension() {
    assert_eq!(
        CatalogFormat::from_extension("CSV"),
        Some(CatalogFormat::Csv)
    );
    assert_eq!(
        CatalogFormat::from_extension("toml"),
        Some(CatalogFormat::Toml)
    );
    assert_eq!(
        CatalogFormat::from_extension("json"),
        Some(CatalogFormat::Json)
    );
    assert_eq!(CatalogFormat::from_extension("xlsx"), None);
}

/// The minimal CSV in data/catalog/README.md is a valid catalog.
#[test]
fn readme_example_parses() {
    let readme = include_str!("../../data/catalog/README.md");
    let start = readme.find("```csv\n").expect("csv block") + "```csv\n".len();
    let len = readme[start..].find("```").expect("block end");
    let c = Catalog::from_csv(&readme[start..start + len]).expect("README example");
    assert_eq!(c.len(), 2);
    assert_eq!(entry(&c, "A002").resource().quantity, 100);
}

/// 003 §3.2.1.1 (Beijing 1–16 核, 1–64 GB) and 000 附件1 ZW010201/ZW010203
/// (Datong steps of 2): every problem of a VM at once; a catalog whose
/// compute is all 信创 refuses x86_64 (000 附件1 备注).
#[test]
fn check_vm_lists_every_problem() {
    let codes = |c: &Catalog, a: Architecture, v: u32, m: u32| -> Vec<&'static str> {
        c.check_vm(a, v, m).iter().map(|e| e.code()).collect()
    };
    let (b, d) = (beijing(), datong());
    assert!(codes(&b, Architecture::X86_64, 16, 64).is_empty());
    assert_eq!(
        codes(&b, Architecture::Arm64, 17, 65),
        ["SHAPE_VCPU_NOT_ALLOWED", "SHAPE_MEMORY_NOT_ALLOWED"]
    );
    assert!(codes(&d, Architecture::C86, 64, 512).is_empty());
    assert_eq!(
        codes(&d, Architecture::X86_64, 3, 8),
        ["SHAPE_VCPU_NOT_ALLOWED"]
    );
    let xc = Catalog::from_toml(
        &d.write(CatalogFormat::Toml)
            .replace("id = \"datong-2023\"", "id = \"xc-only\"")
            .replace("arch = \"x86\"", "arch = \"xinchuang\""),
    )
    .expect("xc catalog");
    assert_eq!(
        codes(&xc, Architecture::X86_64, 4, 8),
        ["CATALOG_ARCH_MISMATCH"]
    );
    assert!(codes(&xc, Architecture::Arm64, 4, 8).is_empty());
}

/// 003 §3.1.3 各服务项最高限制单价: the shipped catalogs are at or under it.
#[test]
fn above_maximum_compares_per_unit_and_month() {
    let b = beijing();
    assert!(b.above_maximum(&b).is_empty());
    assert!(datong().above_maximum(&b).is_empty(), "unpriced");
    // Not a maximum basis: nothing to compare with.
    assert!(b.above_maximum(&datong()).is_empty());
    let dearer = Catalog::from_toml(
        &b.write(CatalogFormat::Toml)
            .replace("id = \"beijing-2023\"", "id = \"dearer\"")
            .replace("price = \"14.02\"", "price = \"14.03\""),
    )
    .expect("dearer");
    let issues = dearer.above_maximum(&b);
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].item_code.as_deref(), Some("1001"));
    assert_eq!(issues[0].code(), "CATALOG_ROW_PRICE_ABOVE_MAXIMUM");
}
