//! Row → record mappers of the shared SQL, one per record type (`json_col` reads a JSON text
//! column). Expanded by [`impl_sql_store!`] for each backend's row type `DbRow`.

macro_rules! sql_row_mappers {
    () => {
        fn json_col(r: &DbRow, col: &str) -> Result<Option<serde_json::Value>, StoreError> {
            let s: Option<String> = r.try_get(col)?;
            Ok(match s {
                Some(s) => Some(serde_json::from_str(&s)?),
                None => None,
            })
        }

        fn key_from_row(r: &DbRow) -> Result<ApiKeyRecord, StoreError> {
            let role: String = r.try_get("role")?;
            Ok(ApiKeyRecord {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                role: Role::parse(&role).unwrap_or(Role::Viewer),
                key_hash: r.try_get("key_hash")?,
                created_ms: r.try_get("created_ms")?,
                revoked_ms: r.try_get("revoked_ms")?,
            })
        }

        fn audit_from_row(r: &DbRow) -> Result<AuditEntry, StoreError> {
            Ok(AuditEntry {
                id: r.try_get("id")?,
                at_ms: r.try_get("at_ms")?,
                key_id: r.try_get("key_id")?,
                role: r.try_get("role")?,
                action: r.try_get("action")?,
                target: r.try_get("target")?,
                detail: json_col(r, "detail")?.unwrap_or_default(),
                status: r.try_get::<i64, _>("status")? as u16,
            })
        }

        fn suspect_from_row(r: &DbRow) -> Result<SuspectRecord, StoreError> {
            Ok(SuspectRecord {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                description: r.try_get("description")?,
                profile: r.try_get("profile")?,
                created_ms: r.try_get("created_ms")?,
                updated_ms: r.try_get("updated_ms")?,
                samples: r.try_get("n_samples")?,
                verdict: json_col(r, "verdict")?,
                verdict_n: r.try_get("verdict_n")?,
                strength: r.try_get("strength")?,
            })
        }

        fn sample_from_row(r: &DbRow) -> Result<SampleRecord, StoreError> {
            Ok(SampleRecord {
                id: r.try_get("id")?,
                suspect_id: r.try_get("suspect_id")?,
                content_hash: r.try_get("content_hash")?,
                text: r.try_get("text")?,
                prompt: r.try_get("prompt")?,
                source: r.try_get("source")?,
                added_ms: r.try_get("added_ms")?,
                score: json_col(r, "score")?,
            })
        }

        fn profile_from_row(r: &DbRow) -> Result<ProfileRecord, StoreError> {
            Ok(ProfileRecord {
                name: r.try_get("name")?,
                upstream: r.try_get("upstream")?,
                meta: json_col(r, "meta")?.unwrap_or(serde_json::Value::Null),
                path: r.try_get("path")?,
                builtin: r.try_get("builtin")?,
                created_ms: r.try_get("created_ms")?,
            })
        }

        fn job_from_row(r: &DbRow) -> Result<JobRecord, StoreError> {
            let state: String = r.try_get("state")?;
            Ok(JobRecord {
                id: r.try_get("id")?,
                kind: r.try_get("kind")?,
                state: JobState::parse(&state).unwrap_or(JobState::Failed),
                params: json_col(r, "params")?.unwrap_or(serde_json::Value::Null),
                input_path: r.try_get("input_path")?,
                total: r.try_get("total")?,
                done: r.try_get("done")?,
                cursor_offset: r.try_get("cursor_offset")?,
                cursor_line: r.try_get("cursor_line")?,
                error: r.try_get("error")?,
                created_by: r.try_get("created_by")?,
                created_ms: r.try_get("created_ms")?,
                updated_ms: r.try_get("updated_ms")?,
                lease_owner: r.try_get("lease_owner")?,
                lease_expires_ms: r.try_get("lease_expires_ms")?,
                parts: r.try_get("parts")?,
                parts_done: r.try_get("parts_done")?,
            })
        }

        fn part_from_row(r: &DbRow) -> Result<JobPart, StoreError> {
            let state: String = r.try_get("state")?;
            Ok(JobPart {
                job_id: r.try_get("job_id")?,
                part_no: r.try_get("part_no")?,
                start_offset: r.try_get("start_offset")?,
                end_offset: r.try_get("end_offset")?,
                lines_before: r.try_get("lines_before")?,
                state: JobState::parse(&state).unwrap_or(JobState::Queued),
                cursor_offset: r.try_get("cursor_offset")?,
                cursor_line: r.try_get("cursor_line")?,
                stats: json_col(r, "stats")?,
                lease_owner: r.try_get("lease_owner")?,
                lease_expires_ms: r.try_get("lease_expires_ms")?,
            })
        }

        fn probe_from_row(r: &DbRow) -> Result<ProbeRecord, StoreError> {
            let state: String = r.try_get("state")?;
            let up: Option<String> = r.try_get("upstream_state")?;
            Ok(ProbeRecord {
                campaign_id: r.try_get("campaign_id")?,
                seq: r.try_get("seq")?,
                probe_id: r.try_get("probe_id")?,
                kind: r.try_get("kind")?,
                prompt: r.try_get("prompt")?,
                state: ProbeState::parse(&state).unwrap_or(ProbeState::Failed),
                attempts: r.try_get("attempts")?,
                answer: r.try_get("answer")?,
                error: r.try_get("error")?,
                tokens: r.try_get("tokens")?,
                claims: json_col(r, "claims")?,
                sample_id: r.try_get("sample_id")?,
                upstream_state: up.as_deref().and_then(ProbeState::parse),
                upstream_answer: r.try_get("upstream_answer")?,
                upstream_error: r.try_get("upstream_error")?,
                upstream_extra: json_col(r, "upstream_extra")?
                    .and_then(|v| serde_json::from_value(v).ok())
                    .unwrap_or_default(),
                sent_ms: r.try_get("sent_ms")?,
                done_ms: r.try_get("done_ms")?,
            })
        }

        fn campaign_from_row(r: &DbRow) -> Result<CampaignRecord, StoreError> {
            let state: String = r.try_get("state")?;
            let (in_flight, answered, failed): (i64, i64, i64) =
                (r.try_get("n_sent")?, r.try_get("n_answered")?, r.try_get("n_failed")?);
            Ok(CampaignRecord {
                id: r.try_get("id")?,
                suspect_id: r.try_get("suspect_id")?,
                state: JobState::parse(&state).unwrap_or(JobState::Failed),
                spec: json_col(r, "spec")?.unwrap_or_default(),
                fingerprint: r.try_get("fingerprint")?,
                sequential: json_col(r, "sequential")?,
                p_value: r.try_get("p_value")?,
                decision: r.try_get("decision")?,
                teacher: r.try_get("teacher")?,
                stop_reason: r.try_get("stop_reason")?,
                error: r.try_get("error")?,
                tokens: r.try_get("tokens")?,
                probes: ProbeCounts {
                    total: r.try_get("n_total")?,
                    pending: r.try_get("n_pending")?,
                    in_flight,
                    answered,
                    failed,
                    sent: in_flight + answered + failed,
                    upstream_answered: r.try_get("n_up_answered")?,
                    upstream_failed: r.try_get("n_up_failed")?,
                },
                created_by: r.try_get("created_by")?,
                created_ms: r.try_get("created_ms")?,
                updated_ms: r.try_get("updated_ms")?,
                lease_owner: r.try_get("lease_owner")?,
                lease_expires_ms: r.try_get("lease_expires_ms")?,
            })
        }
    };
}
