//! Group-sequential testing: look at a suspect's set-level test after every batch of answers and
//! stop as soon as it is confident, without inflating the false-alarm rate.
//!
//! Testing the same suspect at level α after every batch and stopping at the first rejection would
//! reject a true null far more often than α (each look is another chance). Here every look gets
//! its own nominal level from an **alpha-spending function** α(t) over the information fraction
//! t = n / planned maximum (Lan & DeMets): look k is run at level α(t_k) − α(t_{k−1}), and the last
//! look (the budget is spent, or no probes are left) at whatever remains, so the levels of all looks
//! add up to α. A rejection at any look therefore has probability at most Σ levels = α by the
//! union bound, whatever the correlation between looks, as long as each look's p-value is valid.
//! That is conservative compared with exact group-sequential boundaries, which need the joint
//! distribution of the statistics (not assumed here, so that the wrapper stays valid when the
//! set-level test changes). The union bound wastes α when there are many highly correlated looks,
//! so decisions are taken on a **doubling schedule** of planned looks (…, max/4, max/2, max;
//! the p-value can still be recomputed for display after every batch): with few looks the waste
//! is small. The default spending is Pocock-type because the set-level test's information
//! saturates early (the null's between-model variance does not shrink with n, so a suspect's
//! p-value after 50 answers is close to its p-value after 200): early looks are where a stop is
//! possible, and O'Brien–Fleming spending would leave them almost no α.
//!
//! Only a rejection (`distilled`) stops the procedure, and only an exact test produces one: the
//! served-output membership test ([`Sequential::look_with`]). The style verdict is triage and
//! always `undecided`, so a style campaign's looks record its p-value trajectory and the campaign
//! ends on its budget.
//!
//! The wrapper is agnostic of the test: [`Sequential::look`] takes a closure that runs the
//! set-level test at a given level (e.g. `|level| profile.verdict(&scores, &VerdictOptions { alpha:
//! level, .. })`) and returns its [`Verdict`].

use crate::{Decision, Verdict};
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal};

/// Alpha-spending functions α(t), t ∈ [0, 1], with α(0) = 0 and α(1) = α.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Spending {
    /// Lan–DeMets O'Brien–Fleming type: 2 − 2Φ(z_{1−α/2} / √t). Spends almost nothing early.
    OBrienFleming,
    /// Lan–DeMets Pocock type: α ln(1 + (e − 1) t). Spends evenly on the log scale.
    #[default]
    Pocock,
    /// α t.
    Linear,
}

impl Spending {
    /// Cumulative α spent by information fraction `t`.
    pub fn cumulative(self, alpha: f64, t: f64) -> f64 {
        let t = t.clamp(0.0, 1.0);
        if t <= 0.0 {
            return 0.0;
        }
        match self {
            Spending::OBrienFleming => {
                let n = Normal::new(0.0, 1.0).expect("standard normal");
                let z = n.inverse_cdf(1.0 - alpha / 2.0);
                (2.0 - 2.0 * n.cdf(z / t.sqrt())).min(alpha)
            }
            Spending::Pocock => alpha * (1.0 + (std::f64::consts::E - 1.0) * t).ln(),
            Spending::Linear => alpha * t,
        }
    }
}

/// One look at the data.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Look {
    /// Number of responses the test saw.
    pub n: usize,
    /// Information fraction n / max_n (1 at the final look).
    pub t: f64,
    /// The nominal level this look was tested at.
    pub level: f64,
    /// α spent up to and including this look.
    pub spent: f64,
    pub p_value: f64,
    /// The look's decision at `level`: `distilled` stops the procedure (any decision other than
    /// `undecided` would, for results stored by older versions).
    pub decision: Decision,
    pub final_look: bool,
}

/// The state of a group-sequential procedure. Serde-serialisable so that a campaign can persist it
/// and resume after a restart with the α it has already spent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Sequential {
    pub alpha: f64,
    /// Planned maximum number of responses (the budget): t = n / max_n.
    pub max_n: usize,
    pub spending: Spending,
    /// Planned look points (numbers of responses), ascending, ending at `max_n`.
    pub plan: Vec<usize>,
    /// α spent so far.
    pub spent: f64,
    pub looks: Vec<Look>,
}

/// Smallest level a look is run at (a look without new information spends nothing; the test is
/// still run so that its p-value can be reported, but it cannot reject).
const MIN_LEVEL: f64 = 1e-300;

impl Sequential {
    /// A procedure at overall level `alpha` for at most `max_n` responses, with planned looks on a
    /// doubling grid `max_n / 2^k` down to (no lower than) `first_look`.
    pub fn new(alpha: f64, max_n: usize, first_look: usize, spending: Spending) -> Sequential {
        assert!(alpha > 0.0 && alpha < 1.0, "alpha must be in (0, 1)");
        let max_n = max_n.max(1);
        let mut plan = vec![max_n];
        let mut k = max_n;
        while k / 2 >= first_look.max(1) && k / 2 < k {
            k /= 2;
            plan.push(k);
        }
        plan.reverse();
        Sequential { alpha, max_n, spending, plan, spent: 0.0, looks: Vec::new() }
    }

    /// The next planned look point not yet passed by a look (`None` once `max_n` was looked at).
    pub fn next_look(&self) -> Option<usize> {
        let last = self.looks.last().map_or(0, |l| l.n);
        self.plan.iter().copied().find(|&p| p > last)
    }

    /// Whether a look is due with `n` responses in hand (a planned point has been reached).
    pub fn due(&self, n: usize) -> bool {
        self.stopped().is_none() && self.next_look().is_some_and(|p| n >= p)
    }

    /// The decision reached so far, if any look stopped the procedure.
    pub fn stopped(&self) -> Option<Decision> {
        self.looks.iter().map(|l| l.decision).find(|d| *d != Decision::Undecided)
    }

    /// The nominal level of a look at `n` responses (without recording it).
    pub fn level_at(&self, n: usize, final_look: bool) -> f64 {
        let remaining = (self.alpha - self.spent).max(0.0);
        if final_look {
            return remaining;
        }
        let t = n as f64 / self.max_n as f64;
        (self.spending.cumulative(self.alpha, t) - self.spent).clamp(0.0, remaining)
    }

    /// Run the set-level test on `n` responses at this look's level and record the look. `test`
    /// gets the level and must return the verdict of the test run at that level (its `decision`
    /// is taken as the look's decision). Once the procedure has stopped, or after the final look,
    /// further looks are refused with `None`.
    pub fn look(
        &mut self,
        n: usize,
        final_look: bool,
        test: impl FnOnce(f64) -> Verdict,
    ) -> Option<(Look, Verdict)> {
        let mut verdict = None;
        let look = self.look_with(n, final_look, |level| {
            let v = test(level);
            let out = (v.p_value, v.decision);
            verdict = Some(v);
            out
        })?;
        Some((look, verdict.expect("the test ran")))
    }

    /// [`Sequential::look`] for a test that is not a style verdict (the membership test): `test`
    /// gets the look's level and returns its p-value and decision (`Distilled` to reject, i.e.
    /// to stop with a finding; `Undecided` to go on). A rejection whose p-value is not below the
    /// level is recorded as `Undecided`.
    pub fn look_with(
        &mut self,
        n: usize,
        final_look: bool,
        test: impl FnOnce(f64) -> (f64, Decision),
    ) -> Option<Look> {
        if self.stopped().is_some() || self.looks.last().is_some_and(|l| l.final_look) {
            return None;
        }
        let level = self.level_at(n, final_look);
        let (p_value, decision) = test(level.max(MIN_LEVEL));
        // Guard against a test that ignores the level it was given.
        let decision = match decision {
            Decision::Distilled if p_value >= level => Decision::Undecided,
            d => d,
        };
        self.spent += level;
        let look = Look {
            n,
            t: if final_look { 1.0 } else { (n as f64 / self.max_n as f64).min(1.0) },
            level,
            spent: self.spent,
            p_value,
            decision,
            final_look,
        };
        self.looks.push(look.clone());
        Some(look)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Profile, VerdictOptions};
    use rand::SeedableRng;
    use rand_distr_free::*;

    /// Minimal samplers on `rand` alone (the crate has no `rand_distr`): Box–Muller normals and
    /// Student-t as normal / sqrt(chi²/ν).
    mod rand_distr_free {
        use rand::Rng;
        pub fn normal(rng: &mut impl Rng) -> f64 {
            let (u1, u2): (f64, f64) = (rng.gen_range(f64::EPSILON..1.0), rng.gen());
            (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        }
        pub fn student_t(rng: &mut impl Rng, dof: usize) -> f64 {
            let chi2: f64 = (0..dof).map(|_| normal(rng).powi(2)).sum();
            normal(rng) / (chi2 / dof as f64).sqrt()
        }
    }

    #[test]
    fn spending_functions_spend_alpha_monotonically() {
        for s in [Spending::OBrienFleming, Spending::Pocock, Spending::Linear] {
            assert_eq!(s.cumulative(0.01, 0.0), 0.0);
            assert!((s.cumulative(0.01, 1.0) - 0.01).abs() < 1e-12, "{s:?}");
            let mut prev = 0.0;
            for k in 1..=20 {
                let a = s.cumulative(0.01, k as f64 / 20.0);
                assert!(a >= prev, "{s:?} not monotone");
                prev = a;
            }
        }
        // O'Brien–Fleming spends little early: α(0.5) = 2 − 2Φ(2.5758/√0.5) ≈ 2.70e-4 at α = 0.01.
        let a = Spending::OBrienFleming.cumulative(0.01, 0.5);
        assert!((a - 2.70e-4).abs() < 0.05e-4, "{a}");
        // Pocock: 0.01 · ln(1 + (e − 1)/2) ≈ 0.00620.
        assert!((Spending::Pocock.cumulative(0.01, 0.5) - 0.00620).abs() < 1e-5);
    }

    fn fake_verdict(p: f64, level: f64) -> Verdict {
        Verdict {
            n: 1,
            statistic: 0.0,
            effect_size: 0.0,
            p_value: p,
            alpha: level,
            decision: if p < level { Decision::Distilled } else { Decision::Undecided },
            teacher: None,
            families: vec![],
            growth: vec![],
            top_samples: vec![],
            prompt_aligned: false,
            error_check: None,
            triage: None,
        }
    }

    #[test]
    fn levels_add_up_to_alpha_and_the_final_look_spends_the_rest() {
        let mut s = Sequential::new(0.05, 100, 10, Spending::Pocock);
        let mut levels = Vec::new();
        for n in [10, 20, 20, 45] {
            let (l, _) = s.look(n, false, |lv| fake_verdict(0.5, lv)).unwrap();
            levels.push(l.level);
        }
        assert_eq!(levels[2], 0.0, "a look without new responses spends nothing");
        let (last, _) = s.look(60, true, |lv| fake_verdict(0.5, lv)).unwrap();
        assert!(last.level > 0.0);
        assert!((s.spent - 0.05).abs() < 1e-12);
        assert!(
            s.look(70, true, |lv| fake_verdict(0.0, lv)).is_none(),
            "no look after the final one"
        );
    }

    #[test]
    fn stops_at_the_first_confident_look_and_ignores_a_test_that_overrules_its_level() {
        let mut s = Sequential::new(0.01, 100, 10, Spending::OBrienFleming);
        assert_eq!(s.plan, vec![12, 25, 50, 100]);
        assert!(!s.due(11) && s.due(12));
        // p = 0.001 is not below the first look's level (≈ 1e-9 at t = 0.1): keep going.
        let (l, _) = s.look(10, false, |lv| fake_verdict(0.001, lv)).unwrap();
        assert_eq!(l.decision, Decision::Undecided);
        // A test claiming "distilled" with p above the level is not believed.
        let (l, _) = s.look(20, false, |_| fake_verdict(0.001, 0.5)).unwrap();
        assert_eq!(l.decision, Decision::Undecided);
        let (l, _) = s.look(30, false, |lv| fake_verdict(1e-12, lv)).unwrap();
        assert_eq!(l.decision, Decision::Distilled);
        assert_eq!(s.stopped(), Some(Decision::Distilled));
        assert!(s.look(40, false, |lv| fake_verdict(1e-12, lv)).is_none());
        // Round trip through JSON (campaigns persist the state).
        let back: Sequential = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    /// Under the null (an unseen independent model drawn from the profile's own random-effects
    /// null), looking on the doubling plan up to 200 with the style verdict's p-value, rejecting
    /// when it is below the look's level (as an exact test's look does, `look_with`), must stop
    /// at most α of the time: the spending is valid for any valid p-value. The style verdict
    /// itself never decides. The naive procedure (level α every 10 responses) is simulated on the
    /// same draws to show what the spending buys.
    #[test]
    fn type_one_error_under_the_null_stays_below_alpha() {
        let profile = Profile::builtin().expect("built-in profile");
        let null = profile.calibration().set_null();
        assert!(null.models >= 3);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let alpha = 0.05;
        let (max_n, every, sims) = (200usize, 10usize, 3000usize);
        // A new model's true mean from the predictive law of the test (Student-t with J−1
        // degrees of freedom, scale sqrt(τ² + var(means)/J)), its responses normal around it: under
        // exactly these assumptions a single test is exact, so the simulation can show an excess.
        let scale = (null.tau2 + null.mean_var / null.models as f64).sqrt();
        let sigma = null.sigma2.sqrt();
        let (mut seq_alarms, mut naive_alarms, mut single_alarms) = (0usize, 0usize, 0usize);
        for _ in 0..sims {
            let m = null.mu + scale * student_t(&mut rng, null.models - 1);
            let s: Vec<f64> = (0..max_n).map(|_| m + sigma * normal(&mut rng)).collect();
            let mut seq = Sequential::new(alpha, max_n, every, Spending::default());
            let mut naive = false;
            for n in (every..=max_n).step_by(every) {
                let final_look = n == max_n;
                let verdict_at = |level: f64| {
                    profile.verdict_from_scores(&s[..n], &VerdictOptions { alpha: level, top: 0 })
                };
                if seq.due(n) {
                    seq.look_with(n, final_look, |level| {
                        let v = verdict_at(level);
                        assert_eq!(v.decision, Decision::Undecided, "style never decides");
                        let d = if v.p_value < level {
                            Decision::Distilled
                        } else {
                            Decision::Undecided
                        };
                        (v.p_value, d)
                    });
                }
                let v = verdict_at(alpha);
                naive |= v.p_value < alpha;
                if final_look && v.p_value < alpha {
                    single_alarms += 1;
                }
            }
            seq_alarms += (seq.stopped() == Some(Decision::Distilled)) as usize;
            naive_alarms += naive as usize;
        }
        let rate = |k: usize| k as f64 / sims as f64;
        let se = (alpha * (1.0 - alpha) / sims as f64).sqrt();
        eprintln!(
            "type-I error over {sims} null suspects: sequential {:.4}, naive repeated looks {:.4}, single final test {:.4}",
            rate(seq_alarms), rate(naive_alarms), rate(single_alarms)
        );
        assert!(
            rate(seq_alarms) <= alpha + 3.0 * se,
            "sequential type-I error {} > α = {alpha}",
            rate(seq_alarms)
        );
        assert!(
            rate(naive_alarms) >= rate(seq_alarms),
            "naive looks cannot be stricter than spending"
        );
        assert!(
            rate(single_alarms) <= alpha + 3.0 * se,
            "the single test itself is invalid: {}",
            rate(single_alarms)
        );
    }
}
