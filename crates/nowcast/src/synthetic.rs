//! A seeded generator of rainfall data in the layout of the real Himawari-9 data set.
//!
//! The real files are not part of the repository, so tests, examples and benchmarks run on data
//! drawn here. The generator simulates scenes: a 6x6 grid of gauges 25 km apart, watched for 5 hours
//! by a satellite with 2 km pixels, while convective cloud systems drift with a steering wind,
//! grow to a peak and decay. Each gauge of a scene becomes one sequence.
//!
//! - Infrared window 1 (10.4 µm): the surface temperature (about 290-300 K with a daily cycle)
//!   in clear sky, cooling towards 195 K as the cloud deepens.
//! - Infrared window 2 (12.4 µm): window 1 minus the split-window difference, a few kelvin in
//!   moist clear air and near 0 K over thick cloud.
//! - Water vapour (6.2 µm): 230-258 K in clear sky (colder when the upper air is moist), close to
//!   the cloud-top temperature over deep cloud, and blind to shallow cloud.
//! - Rain: only under the convective core of a system, from the core depth mixed over the
//!   current and the previous hour (rain lags the cloud top), scaled by the moisture and by a
//!   log-normal gauge factor that gives the heavy tail.
//!
//! Every scene draws from its own xoshiro256++ stream seeded by (seed, month, scene), so the
//! output does not depend on the number of threads. `docs/nowcast-data.md` lists the parameters
//! and the statistics they produce.

use std::f64::consts::PI;
use std::ops::Range;
use std::path::{Path, PathBuf};

use ndarray::{s, Array2, Array5};
use rand_xoshiro::rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

use crate::data::{
    find_data_file, DataError, Dataset, Result, Split, CHANNELS, GRID, HOURS, TEST_MONTHS,
    TRAIN_MONTHS, VALIDATION_MONTHS,
};

/// Sequences in the real training split (months 6-8).
pub const REAL_TRAIN_SEQUENCES: usize = 229_548;
/// Sequences in the real validation split (month 9).
pub const REAL_VALIDATION_SEQUENCES: usize = 92_839;
/// Sequences in the real test split (month 10).
pub const REAL_TEST_SEQUENCES: usize = 111_715;

const STATIONS_PER_SIDE: usize = 6;
const STATIONS_PER_SCENE: usize = STATIONS_PER_SIDE * STATIONS_PER_SIDE;
const STATION_SPACING_KM: f64 = 25.0;
const PIXEL_KM: f64 = 2.0;
const VALUES_PER_SEQUENCE: usize = HOURS * GRID * GRID * CHANNELS;

/// Systems may start this far outside the station grid and drift in.
const DOMAIN_MARGIN_KM: f64 = 70.0;
/// Mean number of cloud systems in a scene of activity 1.
const SYSTEMS_PER_SCENE: f64 = 9.0;
/// Coldest cloud top, reached by a system of depth 1 at its peak, K.
const COLDEST_TOP_K: f64 = 195.0;
/// Core depth below which no rain falls.
const RAIN_ONSET_DEPTH: f64 = 0.2;
/// Rain rate of a full-depth core before the moisture factor `0.4 + q` and the gauge factor, mm.
const PEAK_RAIN_MM: f64 = 13.5;
/// Log-normal sigma of the gauge factor.
const GAUGE_SIGMA: f64 = 0.75;
/// Weight of the previous hour's core depth in the rain of the current hour.
const RAIN_LAG_WEIGHT: f64 = 0.6;
/// Smallest anvil radius, km.
const MIN_RADIUS_KM: f64 = 15.0;
/// Width of the uniform range of anvil radii above the smallest, km.
const RADIUS_SPREAD_KM: f64 = 60.0;
/// Radius of the raining core relative to the anvil at its peak.
const CORE_FRACTION: f64 = 0.5;
/// Shortest e-folding lifetime of a system, hours.
const MIN_LIFETIME_H: f64 = 1.5;

/// Sequence counts and seed of a synthetic data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntheticConfig {
    /// Seed of every random draw.
    pub seed: u64,
    /// Training sequences, spread over months 6-8.
    pub train: usize,
    /// Validation sequences (month 9).
    pub validation: usize,
    /// Test sequences (month 10).
    pub test: usize,
}

impl Default for SyntheticConfig {
    /// Seed 0 and the real split sizes.
    fn default() -> Self {
        SyntheticConfig {
            seed: 0,
            train: REAL_TRAIN_SEQUENCES,
            validation: REAL_VALIDATION_SEQUENCES,
            test: REAL_TEST_SEQUENCES,
        }
    }
}

/// Maximum sequences per split that [`SyntheticConfig::check`] accepts: four times the real
/// training split, 1.28 GiB of features.
pub const MAX_SEQUENCES: usize = 4 * REAL_TRAIN_SEQUENCES;

impl SyntheticConfig {
    /// Checks that no split requests more than [`MAX_SEQUENCES`] sequences, so that a caller
    /// can reject a size before [`generate`] allocates it.
    ///
    /// # Errors
    ///
    /// [`DataError::InvalidArgument`] naming the split and its size.
    pub fn check(&self) -> Result<()> {
        let splits = [("train", self.train), ("validation", self.validation), ("test", self.test)];
        for (name, count) in splits {
            if count > MAX_SEQUENCES {
                return Err(DataError::InvalidArgument(format!(
                    "the synthetic {name} split requests {count} sequences; at most \
                     {MAX_SEQUENCES} are allowed"
                )));
            }
        }
        Ok(())
    }
}

/// Convective climate of one month.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Climate {
    /// Multiplies the mean number of cloud systems.
    activity: f64,
    /// Shifts the scene moisture (logit scale).
    moisture: f64,
}

/// Returns the month's climate: the monsoon months are active and moist, and October dries out.
fn climate(month: u32) -> Climate {
    match month {
        6 => Climate { activity: 1.0, moisture: 0.3 },
        7 => Climate { activity: 1.05, moisture: 0.4 },
        8 => Climate { activity: 1.1, moisture: 0.45 },
        9 => Climate { activity: 0.85, moisture: 0.35 },
        10 => Climate { activity: 0.85, moisture: 0.1 },
        _ => Climate { activity: 1.0, moisture: 0.0 },
    }
}

/// Splits `n` sequences into `parts` consecutive month ranges of near-equal size, the first
/// ranges one longer when `n` does not divide evenly.
pub fn month_ranges(n: usize, parts: usize) -> Vec<Range<usize>> {
    let parts = parts.max(1);
    let (base, extra) = (n / parts, n % parts);
    let mut start = 0;
    (0..parts)
        .map(|part| {
            let len = base + usize::from(part < extra);
            let range = start..start + len;
            start += len;
            range
        })
        .collect()
}

/// Draws a data set: `config.train` sequences over months 6-8 (as [`month_ranges`]),
/// `config.validation` for month 9 and `config.test` for month 10.
///
/// Equal configurations give identical data. Memory grows by about 1.5 kB per sequence; check the
/// sizes with [`SyntheticConfig::check`] first when they come from a user.
pub fn generate(config: &SyntheticConfig) -> Dataset {
    Dataset {
        train: generate_split(config.seed, &TRAIN_MONTHS, config.train),
        validation: generate_split(config.seed, &VALIDATION_MONTHS, config.validation),
        test: generate_split(config.seed, &TEST_MONTHS, config.test),
    }
}

fn generate_split(seed: u64, months: &[u32], n: usize) -> Split {
    let mut features = Array5::<f32>::zeros((n, HOURS, GRID, GRID, CHANNELS));
    let mut labels = Array2::<f32>::zeros((n, HOURS));
    let ranges = month_ranges(n, months.len());
    let mut feature_rest = features.as_slice_mut().expect("new arrays are contiguous");
    let mut label_rest = labels.as_slice_mut().expect("new arrays are contiguous");

    for (&month, range) in months.iter().zip(ranges) {
        let (month_features, rest) = feature_rest.split_at_mut(range.len() * VALUES_PER_SEQUENCE);
        let (month_labels, label_tail) = label_rest.split_at_mut(range.len() * HOURS);
        generate_month(seed, month, month_features, month_labels);
        feature_rest = rest;
        label_rest = label_tail;
    }
    Split { features, labels }
}

fn generate_month(seed: u64, month: u32, features: &mut [f32], labels: &mut [f32]) {
    let climate = climate(month);
    features
        .par_chunks_mut(STATIONS_PER_SCENE * VALUES_PER_SEQUENCE)
        .zip(labels.par_chunks_mut(STATIONS_PER_SCENE * HOURS))
        .enumerate()
        .for_each(|(scene_index, (scene_features, scene_labels))| {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(scene_seed(seed, month, scene_index));
            let scene = Scene::draw(&mut rng, climate);
            let stations = scene_features
                .chunks_mut(VALUES_PER_SEQUENCE)
                .zip(scene_labels.chunks_mut(HOURS))
                .enumerate();
            for (station, (values, rain)) in stations {
                scene.fill_station(&mut rng, station, values, rain);
            }
        });
}

/// Mixes seed, month and scene index into one stream seed (splitmix64 finalizer).
fn scene_seed(seed: u64, month: u32, scene: usize) -> u64 {
    let mut z =
        seed ^ (u64::from(month) << 56) ^ (scene as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn uniform(rng: &mut Xoshiro256PlusPlus) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Standard normal draw (Box-Muller), for scene parameters.
fn normal(rng: &mut Xoshiro256PlusPlus) -> f64 {
    let u1 = 1.0 - uniform(rng);
    let u2 = uniform(rng);
    (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
}

/// Cheap noise of mean 0 and variance 1 (sum of four 16-bit uniforms, rescaled), for pixel
/// noise where the exact shape of the tails does not matter.
fn pixel_noise(rng: &mut Xoshiro256PlusPlus) -> f64 {
    let bits = rng.next_u64();
    let sum: f64 = (0..4).map(|k| ((bits >> (16 * k)) & 0xFFFF) as f64 / 65536.0).sum();
    (sum - 2.0) * 3.0f64.sqrt()
}

fn poisson(rng: &mut Xoshiro256PlusPlus, mean: f64) -> usize {
    let limit = (-mean.min(60.0)).exp();
    let mut product = uniform(rng);
    let mut count = 0;
    while product > limit {
        product *= uniform(rng);
        count += 1;
    }
    count
}

/// A convective system: a cold disc drifting at constant velocity whose strength rises and
/// falls as a Gaussian in time.
#[derive(Debug, Clone, Copy)]
struct CloudSystem {
    x_km: f64,
    y_km: f64,
    u_km_h: f64,
    v_km_h: f64,
    peak_hour: f64,
    lifetime_h: f64,
    depth: f64,
    radius_km: f64,
}

/// A system frozen at one hour: where it is and how strong.
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    x_km: f64,
    y_km: f64,
    /// Peak cloud depth at the centre, `depth * strength`.
    amplitude: f64,
    /// `1 / radius²` of the anvil, which widens as the system matures.
    anvil_inv_r2: f64,
    /// `1 / radius²` of the raining core.
    core_inv_r2: f64,
}

impl Snapshot {
    fn distance2(&self, x: f64, y: f64) -> f64 {
        (x - self.x_km).powi(2) + (y - self.y_km).powi(2)
    }

    fn cloud_depth(&self, x: f64, y: f64) -> f64 {
        self.amplitude * (-self.distance2(x, y) * self.anvil_inv_r2).exp()
    }

    fn core_depth(&self, x: f64, y: f64) -> f64 {
        self.amplitude * (-self.distance2(x, y) * self.core_inv_r2).exp()
    }
}

impl CloudSystem {
    fn draw(rng: &mut Xoshiro256PlusPlus, wind: (f64, f64)) -> CloudSystem {
        let extent = (STATIONS_PER_SIDE - 1) as f64 * STATION_SPACING_KM + 2.0 * DOMAIN_MARGIN_KM;
        CloudSystem {
            x_km: uniform(rng) * extent - DOMAIN_MARGIN_KM,
            y_km: uniform(rng) * extent - DOMAIN_MARGIN_KM,
            u_km_h: wind.0 + 6.0 * normal(rng),
            v_km_h: wind.1 + 6.0 * normal(rng),
            peak_hour: -3.0 + 11.0 * uniform(rng),
            lifetime_h: MIN_LIFETIME_H + 2.5 * uniform(rng),
            depth: 0.35 + 0.65 * uniform(rng).sqrt(),
            radius_km: MIN_RADIUS_KM + RADIUS_SPREAD_KM * uniform(rng),
        }
    }

    fn at(&self, hour: f64) -> Snapshot {
        let z = (hour - self.peak_hour) / self.lifetime_h;
        let strength = (-z * z).exp();
        let anvil = self.radius_km * (0.5 + 0.5 * strength);
        let core = CORE_FRACTION * self.radius_km;
        Snapshot {
            x_km: self.x_km + self.u_km_h * hour,
            y_km: self.y_km + self.v_km_h * hour,
            amplitude: self.depth * strength,
            anvil_inv_r2: 1.0 / (anvil * anvil),
            core_inv_r2: 1.0 / (core * core),
        }
    }
}

/// One scene: shared weather for a grid of stations over 5 hours.
#[derive(Debug, Clone)]
struct Scene {
    /// Local solar hour at the first hour of the sequences.
    start_hour: f64,
    /// Column moisture, `(0, 1)`.
    moisture: f64,
    /// Systems at hours -1 to 4 (index `hour + 1`); hour -1 feeds the rain lag only.
    snapshots: Vec<[Snapshot; HOURS + 1]>,
}

impl Scene {
    fn draw(rng: &mut Xoshiro256PlusPlus, climate: Climate) -> Scene {
        let start_hour = 24.0 * uniform(rng);
        let regime = (0.8 * normal(rng)).exp();
        let afternoon = 0.4 + 1.2 * diurnal_peak(start_hour + 2.0, 16.0, 4.0);
        let moisture = sigmoid(climate.moisture + 0.9 * regime.ln() + 0.5 * normal(rng));

        let direction = PI + 0.4 * normal(rng);
        let speed = 15.0 + 15.0 * uniform(rng);
        let wind = (speed * direction.cos(), speed * direction.sin());

        let mean_systems = SYSTEMS_PER_SCENE * climate.activity * regime * afternoon;
        let count = poisson(rng, mean_systems);
        let snapshots = (0..count)
            .map(|_| {
                let system = CloudSystem::draw(rng, wind);
                std::array::from_fn(|index| system.at(index as f64 - 1.0))
            })
            .collect();
        Scene { start_hour, moisture, snapshots }
    }

    /// Writes the 5 hours of station `station` into `values` (375 numbers in
    /// `(hour, y, x, channel)` order) and its rain into `rain`.
    fn fill_station(
        &self,
        rng: &mut Xoshiro256PlusPlus,
        station: usize,
        values: &mut [f32],
        rain: &mut [f32],
    ) {
        let gauge_x = (station % STATIONS_PER_SIDE) as f64 * STATION_SPACING_KM;
        let gauge_y = (station / STATIONS_PER_SIDE) as f64 * STATION_SPACING_KM;
        let nearby = self.systems_near(gauge_x, gauge_y);
        let surface_offset = 1.2 * normal(rng);

        for hour in 0..HOURS {
            let local_hour = self.start_hour + hour as f64;
            let daily = (2.0 * PI * (local_hour - 13.0) / 24.0).cos();
            let surface = 295.0 + 3.5 * daily + surface_offset;
            let now: Vec<Snapshot> = nearby.iter().map(|s| s[hour + 1]).collect();
            for y in 0..GRID {
                for x in 0..GRID {
                    let px = gauge_x + (x as f64 - 2.0) * PIXEL_KM;
                    let py = gauge_y + (y as f64 - 2.0) * PIXEL_KM;
                    let depth = now.iter().map(|s| s.cloud_depth(px, py)).fold(0.0, f64::max);
                    let offset = ((hour * GRID + y) * GRID + x) * CHANNELS;
                    let pixel = self.brightness(rng, surface, depth);
                    values[offset..offset + CHANNELS].copy_from_slice(&pixel);
                }
            }
            rain[hour] = self.gauge_rain(rng, &nearby, hour, gauge_x, gauge_y) as f32;
        }
    }

    /// Systems whose anvil reaches the patch at some hour from -1 to 4.
    fn systems_near(&self, x: f64, y: f64) -> Vec<[Snapshot; HOURS + 1]> {
        let patch_radius = 2.0 * PIXEL_KM * std::f64::consts::SQRT_2;
        self.snapshots
            .iter()
            .filter(|hours| {
                hours.iter().any(|s| {
                    // Beyond 3 anvil radii the depth is below exp(-9), about 1e-4.
                    let reach = 3.0 / s.anvil_inv_r2.sqrt() + patch_radius;
                    s.distance2(x, y) < reach * reach
                })
            })
            .copied()
            .collect()
    }

    /// Brightness temperatures (water vapour, window 1, window 2) of a pixel with deep-cloud
    /// depth `cloud_depth` over a surface at `surface` K.
    fn brightness(&self, rng: &mut Xoshiro256PlusPlus, surface: f64, cloud_depth: f64) -> [f32; 3] {
        // Shallow cumulus: warm, patchy, more common in moist air, and invisible to water vapour.
        let shallow =
            if uniform(rng) < 0.25 * self.moisture { 0.05 + 0.15 * uniform(rng) } else { 0.0 };
        let depth = cloud_depth.max(shallow);

        let window1 = surface - depth * (surface - COLDEST_TOP_K) + 0.4 * pixel_noise(rng);
        let thin_ice = 4.0 * cloud_depth * (1.0 - cloud_depth);
        let split = (1.0 - depth).powi(2) * (1.0 + 3.5 * self.moisture) + 2.0 * thin_ice;
        let window2 = window1 - split + 0.3 * pixel_noise(rng);

        let clear_vapour = 258.0 - 28.0 * self.moisture + 1.5 * pixel_noise(rng);
        let high_cloud = ((cloud_depth - 0.25) / 0.75).clamp(0.0, 1.0);
        let vapour = clear_vapour - high_cloud * (clear_vapour - (window1 + 6.0));
        [vapour as f32, window1 as f32, window2 as f32]
    }

    /// Rain at the gauge in hour `hour`, mm.
    fn gauge_rain(
        &self,
        rng: &mut Xoshiro256PlusPlus,
        nearby: &[[Snapshot; HOURS + 1]],
        hour: usize,
        x: f64,
        y: f64,
    ) -> f64 {
        let core =
            |index: usize| nearby.iter().map(|s| s[index].core_depth(x, y)).fold(0.0, f64::max);
        let depth = (1.0 - RAIN_LAG_WEIGHT) * core(hour + 1) + RAIN_LAG_WEIGHT * core(hour);
        let gauge_factor = (GAUGE_SIGMA * normal(rng)).exp();
        if depth <= RAIN_ONSET_DEPTH {
            return 0.0;
        }
        let excess = (depth - RAIN_ONSET_DEPTH) / (1.0 - RAIN_ONSET_DEPTH);
        PEAK_RAIN_MM * excess.powf(1.5) * (0.4 + self.moisture) * gauge_factor
    }
}

/// A bump in `[0, 1]` peaking at local hour `peak`, periodic over the day.
fn diurnal_peak(hour: f64, peak: f64, width: f64) -> f64 {
    let delta = (hour - peak + 12.0).rem_euclid(24.0) - 12.0;
    (-(delta / width).powi(2)).exp()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Writes `dataset` as `features-mM.npy` and `labels-mM.npy` in `dir` (created if needed), the
/// training split divided over months 6-8 by [`month_ranges`], so that
/// [`Dataset::load_real`] reads it back unchanged. Returns the paths written.
///
/// # Errors
/// [`DataError::InvalidArgument`] when `dir` already holds a `.pk` file of the same name,
/// because the loader would read that file instead; [`DataError::Write`] when a write fails.
pub fn write_real_layout(dataset: &Dataset, dir: &Path) -> Result<Vec<PathBuf>> {
    let plan = [
        (&dataset.train, &TRAIN_MONTHS[..]),
        (&dataset.validation, &VALIDATION_MONTHS[..]),
        (&dataset.test, &TEST_MONTHS[..]),
    ];
    for month in TRAIN_MONTHS.iter().chain(&VALIDATION_MONTHS).chain(&TEST_MONTHS) {
        for stem in [format!("features-m{month}"), format!("labels-m{month}")] {
            if let Ok(existing) = find_data_file(dir, &stem) {
                if existing.extension().is_some_and(|ext| ext == "pk") {
                    return Err(DataError::InvalidArgument(format!(
                        "{} exists and would be read instead of {stem}.npy; remove it first",
                        existing.display()
                    )));
                }
            }
        }
    }
    std::fs::create_dir_all(dir).map_err(|source| DataError::Write {
        path: dir.to_path_buf(),
        source: handgrad_data::DataError::Io { action: "create", path: dir.to_path_buf(), source },
    })?;

    let mut written = Vec::new();
    for (split, months) in plan {
        for (&month, range) in months.iter().zip(month_ranges(split.len(), months.len())) {
            let features = split.features.slice(s![range.clone(), .., .., .., ..]);
            let labels = split.labels.slice(s![range, ..]);
            written
                .push(write_npy(&dir.join(format!("features-m{month}.npy")), features.into_dyn())?);
            written.push(write_npy(&dir.join(format!("labels-m{month}.npy")), labels.into_dyn())?);
        }
    }
    Ok(written)
}

fn write_npy(path: &Path, array: ndarray::ArrayViewD<'_, f32>) -> Result<PathBuf> {
    handgrad_data::npy::write_npy_f32(path, &array)
        .map_err(|source| DataError::Write { path: path.to_path_buf(), source })?;
    Ok(path.to_path_buf())
}

/// Statistics of every split, scored against the mode of the training labels.
pub fn dataset_stats(dataset: &Dataset) -> [(&'static str, crate::data::SplitStats); 3] {
    let majority = crate::baselines::label_mode(&dataset.train);
    dataset.splits().map(|(name, split)| (name, crate::data::SplitStats::compute(split, majority)))
}
