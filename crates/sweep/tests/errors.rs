//! A bad spec is refused with a message naming the file, the key path (with line and
//! column) and what was expected.
use common::{assert_mentions, Dir};
use synthsweep_testkit::sweep as common;

const HEAD: &str = "name = \"t\"\nsynth = \"mad\"\n";
const MAD_GRID: &str = r#"
[grid]
image = "images/*.pgm"
optimized_metric = ["mse", "ssim_distance"]
reference_metric = ["mse", "ssim_distance"]
minmax = ["min", "max"]
"#;

fn mad(extra: &str) -> String {
    format!("{HEAD}{MAD_GRID}{extra}")
}

#[test]
fn the_example_spec_is_valid() {
    let d = Dir::new();
    assert_eq!(d.plan(&mad("")).unwrap().len(), 24);
}

#[test]
fn unknown_top_level_key_suggests_the_right_one() {
    let d = Dir::new();
    let msg = d.error(&format!("{HEAD}[gird]\nimage = [\"images/a.pgm\"]\n"));
    assert_mentions(
        &msg,
        &[
            "spec.toml:3:1",
            "unknown key `gird`",
            "did you mean `grid`?",
        ],
    );
}

#[test]
fn a_parameter_at_top_level_is_pointed_to_params() {
    let d = Dir::new();
    let msg = d.error(&format!("{HEAD}seed = 3\n{MAD_GRID}"));
    assert_mentions(&msg, &["unknown key `seed`", "goes in [params]"]);
}

#[test]
fn typo_in_a_when_key() {
    let d = Dir::new();
    let msg = d.error(&mad(
        "[[when]]\nmtch = { minmax = \"min\" }\nset = { max_iter = 3 }\n",
    ));
    assert_mentions(
        &msg,
        &[
            "when[0].mtch",
            "unknown key `mtch`",
            "did you mean `match`?",
        ],
    );
}

#[test]
fn wrong_type_in_an_axis_names_the_element_and_position() {
    let d = Dir::new();
    let text = format!(
        "{HEAD}[grid]\nimage = \"images/*.pgm\"\noptimized_metric = [\"mse\", 3]\n\
         reference_metric = [\"mse\"]\nminmax = [\"min\"]\n"
    );
    let msg = d.error(&text);
    assert_mentions(
        &msg,
        &[
            "spec.toml:5:28: grid.optimized_metric[1]",
            "expected a metric spec like {name = \"mse\"}",
            "got the integer 3",
        ],
    );
}

#[test]
fn model_spec_without_a_name() {
    let d = Dir::new();
    let text = "name = \"t\"\nsynth = \"metamer\"\n[params]\nimage = \"images/a.pgm\"\nmodel = { kernel_size = 5 }\n";
    assert_mentions(&d.error(text), &["params.model", "needs a `name`"]);
}

#[test]
fn empty_axis() {
    let d = Dir::new();
    let msg = d.error(&mad("[params]\n").replace("minmax = [\"min\", \"max\"]", "minmax = []"));
    assert_mentions(&msg, &["grid.minmax", "at least one value"]);
}

#[test]
fn a_scalar_in_grid_is_not_an_axis() {
    let d = Dir::new();
    let msg = d.error(&mad("").replace("minmax = [\"min\", \"max\"]", "minmax = \"min\""));
    assert_mentions(
        &msg,
        &[
            "grid.minmax",
            "expected a list of values",
            "belongs in [params]",
        ],
    );
}

#[test]
fn glob_matching_nothing() {
    let d = Dir::new();
    let msg = d.error(&mad("").replace("images/*.pgm", "images/*.png"));
    assert_mentions(
        &msg,
        &["grid.image", "the glob `images/*.png` matches no image"],
    );
}

#[test]
fn missing_image_file() {
    let d = Dir::new();
    let msg =
        d.error(&mad("").replace("\"images/*.pgm\"", "[\"images/a.pgm\", \"images/zz.pgm\"]"));
    assert_mentions(
        &msg,
        &[
            "grid.image[1]",
            "no such image file or directory: `images/zz.pgm`",
        ],
    );
}

#[test]
fn empty_directory_and_non_image_file() {
    let d = Dir::new();
    std::fs::create_dir(d.path().join("empty")).unwrap();
    d.write("notes.txt", b"hello");
    let msg = d.error(&mad("").replace("\"images/*.pgm\"", "\"empty\""));
    assert_mentions(&msg, &["grid.image", "holds no PGM, PPM, PNG or JPEG"]);
    let msg = d.error(&mad("").replace("\"images/*.pgm\"", "\"notes.txt\""));
    assert_mentions(
        &msg,
        &["grid.image", "`notes.txt` is not a PGM, PPM, PNG or JPEG"],
    );
}

#[test]
fn image_whose_bytes_are_not_what_the_extension_says() {
    let d = Dir::new();
    d.write("images/fake.png", b"not a png");
    let msg = d.error(&mad("").replace("\"images/*.pgm\"", "\"images\""));
    assert_mentions(&msg, &["grid.image", "fake.png", "not a PNG image"]);
}

#[test]
fn exclusion_naming_a_missing_axis() {
    let d = Dir::new();
    let msg = d.error(&mad(
        "[[exclude]]\nsame = [\"optimised_metric\", \"reference_metric\"]\n",
    ));
    assert_mentions(
        &msg,
        &[
            "exclude[0].same[0]",
            "`optimised_metric` is not an axis",
            "did you mean `optimized_metric`?",
        ],
    );
}

#[test]
fn exclusion_naming_a_fixed_parameter() {
    let d = Dir::new();
    let msg = d.error(&mad("[params]\nmax_iter = 5\n[[exclude]]\nmax_iter = 5\n"));
    assert_mentions(
        &msg,
        &["exclude[0].max_iter", "fixed in [params], not an axis"],
    );
}

#[test]
fn exclusion_value_matching_nothing() {
    let d = Dir::new();
    let msg = d.error(&mad("[[exclude]]\nminmax = \"maxx\"\n"));
    assert_mentions(
        &msg,
        &[
            "exclude[0].minmax",
            "\"maxx\" matches no value of the axis `minmax`",
            "min, max",
        ],
    );
}

#[test]
fn exclusions_that_drop_everything() {
    let d = Dir::new();
    let msg = d.error(&mad(
        "[[exclude]]\nminmax = \"min\"\n[[exclude]]\nminmax = \"max\"\n",
    ));
    assert_mentions(&msg, &["exclusions drop all 24 tasks"]);
}

#[test]
fn zip_lengths_differ_names_both() {
    let d = Dir::new();
    let text = "name = \"t\"\nsynth = \"metamer\"\n[params]\nimage = \"images/a.pgm\"\n\
                [[zip]]\nmodel = [\"gaussian\", \"center_surround\", \"on_off\"]\n\"model.kernel_size\" = [5, 7]\n";
    let msg = d.error(text);
    assert_mentions(
        &msg,
        &[
            "zip[0].\"model.kernel_size\"",
            "`model` has 3 values but `model.kernel_size` has 2",
        ],
    );
}

#[test]
fn axis_and_fixed_parameter_of_the_same_name() {
    let d = Dir::new();
    let msg = d.error(&mad("[params]\nminmax = \"min\"\n"));
    assert_mentions(
        &msg,
        &["grid.minmax", "`minmax` is set twice (at params.minmax)"],
    );
}

#[test]
fn repeats_and_a_seed() {
    let d = Dir::new();
    let msg = d.error(&format!("{HEAD}repeats = 3\n{MAD_GRID}seed = [0, 1]\n"));
    assert_mentions(&msg, &["repeats", "the seed is also set"]);
}

#[test]
fn non_finite_numbers_and_dates_are_refused() {
    let d = Dir::new();
    assert_mentions(
        &d.error(&mad("[params]\ninitial_noise = nan\n")),
        &["params.initial_noise", "finite number"],
    );
    assert_mentions(
        &d.error(&mad("[params]\nwhen = 1979-05-27\n")),
        &["params.when", "got 1979-05-27"],
    );
}

#[test]
fn a_bad_seed_and_a_bad_minmax() {
    let d = Dir::new();
    assert_mentions(
        &d.error(&mad("[params]\nseed = -1\n")),
        &["params.seed", "non-negative integer", "-1"],
    );
    let msg = d.error(&mad("").replace("[\"min\", \"max\"]", "[\"min\", \"maximum\"]"));
    assert_mentions(
        &msg,
        &[
            "grid.minmax[1]",
            "expected \"min\" or \"max\"",
            "\"maximum\"",
        ],
    );
}

#[test]
fn missing_and_unknown_synth() {
    let d = Dir::new();
    assert_mentions(
        &d.error("name = \"t\"\n"),
        &["missing `synth", "mad, eigendistortion"],
    );
    assert_mentions(
        &d.error("name = \"t\"\nsynth = \"metamers\"\n"),
        &[
            "synth",
            "unknown synth `metamers`",
            "did you mean `metamer`?",
        ],
    );
}

#[test]
fn missing_input_of_the_method() {
    let d = Dir::new();
    let msg = d.error(&format!("{HEAD}[grid]\nimage = \"images/*.pgm\"\noptimized_metric = [\"mse\"]\nreference_metric = [\"ssim\"]\n"));
    assert_mentions(&msg, &["mad needs `minmax`"]);
}

#[test]
fn a_misspelt_input_is_named_rather_than_the_input_it_leaves_out() {
    let d = Dir::new();
    for (typo, input) in [("imagee", "image"), ("minmx", "minmax")] {
        let image = if typo == "imagee" { "imagee" } else { "image" };
        let minmax = if typo == "minmx" { "minmx" } else { "minmax" };
        let msg = d.error(&format!(
            "{HEAD}[params]\n{image} = \"images/a.pgm\"\n{minmax} = \"min\"\n\
             optimized_metric = \"mse\"\nreference_metric = \"ssim\"\n"
        ));
        assert_mentions(
            &msg,
            &[
                &format!("`{typo}` is neither an input nor a parameter of mad"),
                &format!("did you mean `{input}`?"),
            ],
        );
    }
}

#[test]
fn input_the_method_does_not_take() {
    let d = Dir::new();
    let msg = d.error(&mad("[params]\nmodel = \"gaussian\"\n"));
    assert_mentions(
        &msg,
        &[
            "params.model",
            "mad takes no `model`",
            "image, optimized_metric, reference_metric, minmax, seed",
        ],
    );
    let msg = d.error("name = \"t\"\nsynth = \"geodesic\"\n[params]\nimage = \"images/a.pgm\"\nmodel = \"gaussian\"\n");
    assert_mentions(
        &msg,
        &["geodesic takes no `image` (use image_a and image_b, or grid.pairs)"],
    );
}

#[test]
fn pairs_for_a_single_image_method() {
    let d = Dir::new();
    let msg = d.error(&format!(
        "{HEAD}[grid]\npairs = [[\"images/a.pgm\", \"images/b.pgm\"]]\n"
    ));
    assert_mentions(&msg, &["grid.pairs", "mad takes one image, not pairs"]);
}

#[test]
fn a_pair_side_that_is_a_glob_of_several() {
    let d = Dir::new();
    let msg = d.error("name = \"t\"\nsynth = \"score\"\n[params]\nmetric = \"mse\"\n[grid]\npairs = [[\"images/*.pgm\", \"images/b.pgm\"]]\n");
    assert_mentions(
        &msg,
        &[
            "grid.pairs[0][0]",
            "each side of a pair must be one file",
            "names 3 files",
        ],
    );
}

#[test]
fn a_fixed_glob_of_several_images() {
    let d = Dir::new();
    let msg = d.error("name = \"t\"\nsynth = \"metamer\"\n[params]\nimage = \"images/*.pgm\"\nmodel = \"gaussian\"\n");
    assert_mentions(
        &msg,
        &["params.image", "names 3 images", "put several in [grid]"],
    );
}

#[test]
fn a_value_listed_twice_in_an_axis() {
    let d = Dir::new();
    let msg =
        d.error(&mad("").replace("\"images/*.pgm\"", "[\"images/*.pgm\", \"./images/b.pgm\"]"));
    assert_mentions(
        &msg,
        &[
            "grid.image[1]",
            "images/b.pgm is listed twice in grid.image (also at grid.image[0]",
        ],
    );
    let msg =
        d.error(&mad("[params]\n").replace("[\"min\", \"max\"]", "[\"min\", \"max\", \"min\"]"));
    assert_mentions(&msg, &["grid.minmax[2]", "min is listed twice"]);
}

#[test]
fn when_setting_an_axis_or_matching_nothing() {
    let d = Dir::new();
    let msg = d.error(&mad(
        "[[when]]\nmatch = { minmax = \"min\" }\nset = { minmax = \"max\" }\n",
    ));
    assert_mentions(&msg, &["when[0].set.minmax", "`minmax` is an axis"]);
    let msg = d.error(&mad(
        "[[when]]\nmatch = { optimized_metric = \"nlpd\" }\nset = { max_iter = 3 }\n",
    ));
    assert_mentions(
        &msg,
        &[
            "when[0].match.optimized_metric",
            "\"nlpd\" matches no value",
            "mse, ssim_distance",
        ],
    );
    let msg = d.error(&mad("[[when]]\nmatch = { minmax = \"min\" }\n"));
    assert_mentions(&msg, &["when[0]", "needs `set`"]);
}

#[test]
fn dotted_name_without_its_base() {
    let d = Dir::new();
    let msg = d.error(&mad("[params]\n\"optimizer.lr\" = 0.1\n"));
    assert_mentions(
        &msg,
        &[
            "params.\"optimizer.lr\"",
            "sets a field of `optimizer`, which this sweep does not give",
        ],
    );
}

#[test]
fn dotted_name_on_a_value_that_is_not_a_table() {
    let d = Dir::new();
    let msg = d.error(&mad(
        "[params]\noptimizer = \"adam\"\n\"optimizer.lr\" = 0.1\n",
    ));
    assert_mentions(
        &msg,
        &[
            "params.\"optimizer.lr\"",
            "`optimizer` is adam (not a table)",
        ],
    );
}

#[test]
fn invalid_toml_names_the_file_and_position() {
    let d = Dir::new();
    let msg = d.error("name = \"t\"\nsynth = \n");
    assert_mentions(&msg, &["spec.toml: not valid TOML", "line 2"]);
}

#[test]
fn invalid_toml_keeps_the_reason() {
    let d = Dir::new();
    let msg = d.error("name = \"t\"\nsynth = \"mad\"\nname = \"u\"\n");
    assert_mentions(
        &msg,
        &[
            "spec.toml: not valid TOML",
            "line 3",
            "duplicate key",
            "name",
        ],
    );
    assert!(!msg.contains('\n'), "one line: {msg}");
}

#[test]
fn bad_sweep_name() {
    let d = Dir::new();
    assert_mentions(
        &d.error(&mad("").replace("name = \"t\"", "name = \"my sweep/1\"")),
        &["spec.toml:1:8: name", "letters, digits"],
    );
}

#[test]
fn unreadable_spec_file() {
    let e = synthsweep_sweep::SweepSpec::from_path("/nonexistent/spec.toml").unwrap_err();
    assert_mentions(
        &e.to_string(),
        &["cannot read sweep spec /nonexistent/spec.toml"],
    );
}

#[test]
fn a_when_whose_conditions_never_meet() {
    let d = Dir::new();
    let text = "name = \"t\"\nsynth = \"metamer\"\n[params]\nimage = \"images/a.pgm\"\n\
                [[zip]]\nmodel = [\"gaussian\", \"on_off\"]\nmax_iter = [1, 2]\n\
                [[when]]\nmatch = { model = \"gaussian\", max_iter = 2 }\nset = { stop_criterion = 0.1 }\n";
    let msg = d.error(text);
    assert_mentions(
        &msg,
        &[
            "when[0]",
            "applies to no task",
            "model = \"gaussian\", max_iter = 2",
        ],
    );
}

#[test]
fn exclusion_and_when_tables_must_not_be_empty_or_single() {
    let d = Dir::new();
    assert_mentions(
        &d.error(&mad("[exclude]\nminmax = \"min\"\n")),
        &[
            "exclude",
            "expected an array of tables ([[exclude]] sections), got a table",
        ],
    );
    assert_mentions(
        &d.error(&mad("[[exclude]]\n")),
        &["exclude[0]", "got an empty table"],
    );
    assert_mentions(
        &d.error(&mad("[[exclude]]\nsame = [\"minmax\"]\n")),
        &["exclude[0].same", "two or more axis names"],
    );
}

#[test]
fn an_unquoted_dotted_axis_is_pointed_to_quotes() {
    let d = Dir::new();
    let text = "name = \"t\"\nsynth = \"metamer\"\n[params]\nimage = \"images/a.pgm\"\nmodel = \"gaussian\"\n\
                [grid]\nmodel.kernel_size = [5, 7]\n";
    let msg = d.error(text);
    assert_mentions(
        &msg,
        &[
            "grid.model",
            "quote the dotted key: \"model.kernel_size\" = [...]",
        ],
    );
}

#[test]
fn an_impossible_number_of_repeats_is_refused_naming_repeats() {
    let d = Dir::new();
    let text = "name = \"r\"\nsynth = \"metamer\"\nrepeats = 1073741824\n[params]\nimage = \"images/a.pgm\"\nmodel = \"gaussian\"\n";
    let msg = d.error(text);
    assert_mentions(
        &msg,
        &[
            "spec.toml:3",
            "repeats",
            "1073741824 seeds",
            "at most 16777216",
        ],
    );
}

#[test]
fn a_grid_too_large_to_check_is_refused_naming_its_longest_axis() {
    // 17 x 2^24 tasks (each axis within its own bound): more than 2^28 to check in one
    // process, refused before any is checked (which would take hours and gigabytes of scratch file).
    let d = Dir::new();
    let text = "name = \"r\"\nsynth = \"metamer\"\nrepeats = 16777216\n[params]\nimage = \"images/a.pgm\"\nmodel = \"gaussian\"\n[grid]\nmax_iter = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]\n";
    let msg = d.error(text);
    assert_mentions(
        &msg,
        &[
            "spec.toml:3",
            "the sweep has 285212672 tasks",
            "16777216 values on its longest axis, repeats",
            "at most 268435456",
            "`run --shard i/n` with n >= 2",
        ],
    );
    // One shard small enough is checked as usual; one too large says which shard.
    let plan = d
        .spec(text)
        .unwrap()
        .plan_with(
            std::sync::Arc::new(synthsweep_sweep::NoopResolver),
            synthsweep_sweep::PlanOptions {
                check: synthsweep_sweep::CheckScope::Values,
            },
        )
        .unwrap();
    use synthsweep_sweep::CheckScope::Shard;
    let small = 1 << 24;
    assert_eq!(
        plan.check(Shard {
            index: 3,
            count: small
        })
        .unwrap(),
        17
    );
    let msg = plan
        .check(Shard { index: 0, count: 1 })
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("shard 0/1 has 285212672 of the sweep's 285212672 tasks"),
        "{msg}"
    );
}
