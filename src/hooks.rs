//! warden's ProcessUtility hook (warden is preloaded, so it sees every utility statement).
//!
//! Today it has one job: `SET warden.context_token = ...` without `LOCAL` is refused. A forged or
//! invalid token fails with 28000, exactly as with `SET LOCAL` or `authenticate`; a valid one with
//! 22023, because a session-level value would outlive the transaction. The read path ignores such a
//! value anyway (see `context`); refusing the statement tells the application so instead of leaving
//! it with no rows and no explanation. `RESET` and `SET ... TO DEFAULT` stay allowed: they clear it.

use std::ffi::CStr;

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::context::ContextError;
use crate::gucs::CONTEXT_TOKEN_NAME;

static mut PREVIOUS: pg_sys::ProcessUtility_hook_type = None;

pub fn init() {
    // SAFETY: called once from _PG_init in the postmaster (or a backend), before any statement.
    unsafe {
        PREVIOUS = pg_sys::ProcessUtility_hook;
        pg_sys::ProcessUtility_hook = Some(process_utility);
    }
}

/// When `stmt` is a session-level `SET warden.context_token = <value>`: `Some(Some(value))`, or
/// `Some(None)` when the value is not a single string constant.
unsafe fn session_level_carrier_set(stmt: *mut pg_sys::Node) -> Option<Option<Vec<u8>>> {
    unsafe {
        if stmt.is_null() || (*stmt).type_ != pg_sys::NodeTag::T_VariableSetStmt {
            return None;
        }
        let set = stmt.cast::<pg_sys::VariableSetStmt>();
        let ours = !(*set).is_local
            && (*set).kind == pg_sys::VariableSetKind::VAR_SET_VALUE
            && !(*set).name.is_null()
            && CStr::from_ptr((*set).name)
                .to_bytes()
                .eq_ignore_ascii_case(CONTEXT_TOKEN_NAME.to_bytes());
        if !ours {
            return None;
        }
        let args = (*set).args;
        let mut value = None;
        if !args.is_null() && (*args).length == 1 {
            let arg = (*(*args).elements).ptr_value.cast::<pg_sys::Node>();
            if !arg.is_null() && (*arg).type_ == pg_sys::NodeTag::T_A_Const {
                let c = arg.cast::<pg_sys::A_Const>();
                if !(*c).isnull && (*c).val.sval.type_ == pg_sys::NodeTag::T_String {
                    let p = (*c).val.sval.sval;
                    if !p.is_null() {
                        value = Some(CStr::from_ptr(p).to_bytes().to_vec());
                    }
                }
            }
        }
        Some(value)
    }
}

#[pg_guard]
#[allow(clippy::too_many_arguments)]
unsafe extern "C-unwind" fn process_utility(
    pstmt: *mut pg_sys::PlannedStmt,
    query_string: *const std::ffi::c_char,
    read_only_tree: bool,
    context: pg_sys::ProcessUtilityContext::Type,
    params: pg_sys::ParamListInfo,
    query_env: *mut pg_sys::QueryEnvironment,
    dest: *mut pg_sys::DestReceiver,
    qc: *mut pg_sys::QueryCompletion,
) {
    // SAFETY: PostgreSQL passes a valid PlannedStmt; the previous hook (or the standard function)
    // gets exactly the arguments we were given.
    unsafe {
        if let Some(value) = (!pstmt.is_null())
            .then(|| session_level_carrier_set((*pstmt).utilityStmt))
            .flatten()
            .filter(|v| v.as_ref().is_none_or(|v| !v.is_empty()))
        {
            // '' only clears and is let through; anything else is refused
            let refused =
                ContextError::NotTransactional("set for the whole session: SET needs LOCAL");
            let e = match value {
                Some(v) => crate::context::verify_carrier_value(&v)
                    .err()
                    .unwrap_or(refused),
                None => refused,
            };
            crate::errors::report(&e).report(PgLogLevel::ERROR);
        }
        match PREVIOUS {
            Some(previous) => previous(
                pstmt,
                query_string,
                read_only_tree,
                context,
                params,
                query_env,
                dest,
                qc,
            ),
            None => pg_sys::standard_ProcessUtility(
                pstmt,
                query_string,
                read_only_tree,
                context,
                params,
                query_env,
                dest,
                qc,
            ),
        }
    }
}
