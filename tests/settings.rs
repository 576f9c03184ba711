//! Settings: defaults and shipped presets are valid and say what the reference's usage table
//! says, every bad field is named in the error, TOML round-trips, and user presets can be
//! saved, renamed and deleted without touching the built-in ones.

use avatar_studio::settings::presets::{
    PresetError, PresetStore, built_in_presets, check_built_in_sources,
};
use avatar_studio::settings::{
    AudioSync, ClipCount, DeviceChoice, GenerationSettings, Seed, SizeArea,
};

#[test]
fn defaults_and_built_in_presets_are_valid() {
    GenerationSettings::default().validate().unwrap();
    check_built_in_sources().unwrap();
    let presets = built_in_presets();
    let names: Vec<&str> = presets.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["quick preview", "standard", "high quality", "long video"]
    );
    let get = |name: &str| &presets.iter().find(|p| p.name == name).unwrap().settings;

    let quick = get("quick preview");
    assert_eq!(quick.size.to_string(), "384*256");
    assert_eq!(quick.sample_steps, 3);
    assert_eq!(quick.num_clips, ClipCount::AtMost(10));
    assert_eq!(get("standard").size.to_string(), "688*368");
    assert_eq!(get("standard").sample_steps, 4);
    assert_eq!(get("high quality").size.to_string(), "704*384");
    assert!(get("long video").online_decode);
    assert_eq!(get("long video").num_clips, ClipCount::Auto);
    assert!(
        presets
            .iter()
            .all(|p| p.built_in && !p.description.is_empty())
    );
}

#[test]
fn every_invalid_field_is_named() {
    let bad = GenerationSettings {
        size: SizeArea {
            width: 100,
            height: 100,
        },
        num_clips: ClipCount::AtMost(0),
        frames_per_clip: 50,
        sample_steps: 5,
        devices: DeviceChoice::Cuda(vec![0, 0]),
        vram_budget_gb: Some(-3.0),
        video_crf: 60,
        prompt: "a\0b".into(),
        ..GenerationSettings::default()
    };
    let err = bad.validate().unwrap_err();
    for field in [
        "size",
        "num_clips",
        "frames_per_clip",
        "sample_steps",
        "devices",
        "vram_budget_gb",
        "video_crf",
        "prompt",
    ] {
        assert!(
            err.for_field(field).is_some(),
            "{field} not reported in: {err}"
        );
        assert!(err.to_string().contains(&format!("setting `{field}`")));
    }
    assert!(
        err.for_field("size").unwrap().contains("704*384"),
        "lists the choices"
    );
    assert!(
        err.for_field("frames_per_clip")
            .unwrap()
            .contains("multiple of 12")
    );

    let zero_steps = GenerationSettings {
        sample_steps: 0,
        ..Default::default()
    };
    assert_eq!(zero_steps.validate().unwrap_err().errors.len(), 1);
    let nan_budget = GenerationSettings {
        vram_budget_gb: Some(f64::NAN),
        ..Default::default()
    };
    assert!(nan_budget.validate().is_err());
    let ok_budget = GenerationSettings {
        vram_budget_gb: Some(24.0),
        ..Default::default()
    };
    ok_budget.validate().unwrap();
}

#[test]
fn values_parse_as_users_type_them() {
    assert_eq!(
        "704*384".parse::<SizeArea>().unwrap(),
        SizeArea {
            width: 704,
            height: 384
        }
    );
    assert_eq!("704x384".parse::<SizeArea>().unwrap().area(), 704 * 384);
    assert!("704".parse::<SizeArea>().is_err());
    assert_eq!("auto".parse::<ClipCount>().unwrap(), ClipCount::Auto);
    assert_eq!("12".parse::<ClipCount>().unwrap(), ClipCount::AtMost(12));
    assert!("many".parse::<ClipCount>().is_err());
    assert_eq!(
        "-1".parse::<Seed>().unwrap(),
        Seed::Random,
        "the reference's random seed"
    );
    assert_eq!("42".parse::<Seed>().unwrap(), Seed::Fixed(42));
    assert_eq!(
        "cuda:0,1".parse::<DeviceChoice>().unwrap(),
        DeviceChoice::Cuda(vec![0, 1])
    );
    assert_eq!("cpu".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cpu);
    assert!("tpu:0".parse::<DeviceChoice>().is_err());
}

#[test]
fn toml_round_trip_and_unknown_keys() {
    let settings = GenerationSettings {
        size: "688*368".parse().unwrap(),
        num_clips: ClipCount::AtMost(7),
        seed: Seed::Fixed(1234),
        prompt: "A woman speaks warmly, soft studio light".into(),
        fp8: true,
        devices: DeviceChoice::Cuda(vec![1]),
        vram_budget_gb: Some(23.5),
        audio_sync: AudioSync::Aligned,
        ..GenerationSettings::default()
    };
    let text = settings.to_toml().unwrap();
    assert!(text.contains("size = \"688*368\""), "{text}");
    assert!(text.contains("seed = 1234"), "{text}");
    assert_eq!(GenerationSettings::from_toml(&text).unwrap(), settings);

    let typo = GenerationSettings::from_toml("sampel_steps = 3\n").unwrap_err();
    assert!(typo.to_string().contains("sampel_steps"), "{typo}");
    let bad_value = GenerationSettings::from_toml("num_clips = \"lots\"\n").unwrap_err();
    assert!(bad_value.to_string().contains("lots"), "{bad_value}");
}

#[test]
fn user_presets_save_rename_delete() {
    let dir = tempfile::tempdir().unwrap();
    let store = PresetStore::new(dir.path().join("presets"));
    let (presets, problems) = store.list();
    assert_eq!(presets.len(), 4);
    assert!(problems.is_empty());

    let mine = GenerationSettings {
        sample_steps: 2,
        ..Default::default()
    };
    store.save("My look", &mine).unwrap();
    let (presets, _) = store.list();
    let saved = presets.iter().find(|p| p.name == "My look").unwrap();
    assert_eq!(saved.settings, mine);
    assert!(!saved.built_in);

    store.rename("My look", "Podcast").unwrap();
    let (presets, _) = store.list();
    assert!(presets.iter().any(|p| p.name == "Podcast"));
    assert!(!presets.iter().any(|p| p.name == "My look"));

    assert!(matches!(
        store.save("standard", &mine),
        Err(PresetError::BuiltIn { .. })
    ));
    assert!(matches!(
        store.delete("quick preview"),
        Err(PresetError::BuiltIn { .. })
    ));
    assert!(matches!(
        store.save("../escape", &mine),
        Err(PresetError::BadName { .. })
    ));
    let invalid = GenerationSettings {
        sample_steps: 9,
        ..Default::default()
    };
    assert!(matches!(
        store.save("Broken", &invalid),
        Err(PresetError::Invalid { .. })
    ));
    store.save("Other", &mine).unwrap();
    assert!(matches!(
        store.rename("Podcast", "Other"),
        Err(PresetError::Exists { .. })
    ));

    store.delete("Podcast").unwrap();
    assert!(matches!(
        store.delete("Podcast"),
        Err(PresetError::NotFound { .. })
    ));

    // A hand-edited preset that no longer parses is reported, and the rest still load.
    std::fs::write(store.dir().join("Mangled.toml"), "size = [").unwrap();
    let (presets, problems) = store.list();
    assert_eq!(presets.len(), 5);
    assert_eq!(problems.len(), 1);
    assert!(problems[0].to_string().contains("Mangled.toml"));
}
