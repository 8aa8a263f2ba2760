//! Planner support for the context functions.
//!
//! Citus refuses policies that contain a subquery, so on a distributed table warden's policies call
//! `warden.tenant_with_level(...)` directly; and hand-written policies and queries call
//! `warden.current_tenant()` and the other accessors directly too (the mistake that makes a
//! `current_setting()` policy run per row). Left alone, PostgreSQL would call them once per row.
//! Their support function (`SupportRequestSimplify`) rewrites such a call, when its arguments are
//! constants inside a query that reads rows, into the scalar subquery `(SELECT <the call>)`, which
//! the planner then turns into an InitPlan: one call per statement, evaluated in the leader of a
//! parallel query and passed to the workers. The policy as stored (and as Citus inspects it) has no
//! subquery; every node's planner makes the InitPlan.
//!
//! Equivalence: the functions are STABLE, so within one statement every call returns the same value
//! anyway. The subquery's own call sits in a query without FROM, which is left alone, so the
//! rewrite never recurses.
//!
//! Floor 1, ground: uses nothing of warden.

use pgrx::prelude::*;
use pgrx::Internal;

/// `SupportRequestSimplify` for the context accessors and `warden.tenant_with_level(text)`.
#[pg_extern(immutable, parallel_safe)]
fn _context_support(request: Internal) -> Internal {
    // "No rewrite" is a null pointer, not an SQL NULL: the planner calls this with
    // OidFunctionCall1, which refuses an SQL NULL result.
    let no_rewrite = || Internal::from(Some(pg_sys::Datum::from(0usize)));
    let Some(datum) = request.unwrap() else {
        return no_rewrite();
    };
    // SAFETY: PostgreSQL calls a support function with a pointer to a SupportRequest* node; every
    // pointer below is checked before it is followed, and the new nodes are palloc'd in the
    // planner's memory context.
    let rewritten = unsafe { simplify(datum.cast_mut_ptr::<pg_sys::Node>()) };
    match rewritten {
        Some(node) => Internal::from(Some(pg_sys::Datum::from(node))),
        None => no_rewrite(),
    }
}

/// Whether a range table has anything but RTE_RESULT entries (the planner puts one in place of an
/// empty FROM clause), i.e. whether an expression in the query can run once per row.
unsafe fn reads_rows(rtable: *mut pg_sys::List) -> bool {
    unsafe {
        if rtable.is_null() {
            return false;
        }
        let n = usize::try_from((*rtable).length).unwrap_or(0);
        (0..n).any(|i| {
            let rte = (*(*rtable).elements.add(i))
                .ptr_value
                .cast::<pg_sys::RangeTblEntry>();
            !rte.is_null() && (*rte).rtekind != pg_sys::RTEKind::RTE_RESULT
        })
    }
}

unsafe fn simplify(node: *mut pg_sys::Node) -> Option<*mut pg_sys::Node> {
    unsafe {
        if node.is_null() || (*node).type_ != pg_sys::NodeTag::T_SupportRequestSimplify {
            return None;
        }
        let req = node.cast::<pg_sys::SupportRequestSimplify>();
        let root = (*req).root;
        let fcall = (*req).fcall;
        if root.is_null() || fcall.is_null() || (*root).parse.is_null() {
            return None; // not inside the planner: nothing to gain
        }
        let parse = (*root).parse;
        if !reads_rows((*parse).rtable) {
            return None; // no rows to iterate: the call already runs once (and this ends the recursion)
        }
        // only a call whose arguments are all constants can be evaluated once for the statement
        let args = (*fcall).args;
        let n = if args.is_null() {
            0
        } else {
            usize::try_from((*args).length).unwrap_or(0)
        };
        for i in 0..n {
            let arg = (*(*args).elements.add(i)).ptr_value.cast::<pg_sys::Node>();
            if arg.is_null() || (*arg).type_ != pg_sys::NodeTag::T_Const {
                return None;
            }
        }

        // SELECT <the same call>
        let call = pg_sys::copyObjectImpl(fcall.cast()).cast::<pg_sys::Expr>();
        let target = pg_sys::makeTargetEntry(call, 1, pg_sys::pstrdup(c"context".as_ptr()), false);
        let query = pg_sys::palloc0(std::mem::size_of::<pg_sys::Query>()).cast::<pg_sys::Query>();
        (*query).type_ = pg_sys::NodeTag::T_Query;
        (*query).commandType = pg_sys::CmdType::CMD_SELECT;
        (*query).querySource = pg_sys::QuerySource::QSRC_ORIGINAL;
        (*query).canSetTag = true;
        (*query).jointree = pg_sys::makeFromExpr(std::ptr::null_mut(), std::ptr::null_mut());
        (*query).targetList = pg_sys::lappend(std::ptr::null_mut(), target.cast());
        (*query).stmt_location = -1;

        // (SELECT ...) as an expression
        let sublink =
            pg_sys::palloc0(std::mem::size_of::<pg_sys::SubLink>()).cast::<pg_sys::SubLink>();
        (*sublink).xpr.type_ = pg_sys::NodeTag::T_SubLink;
        (*sublink).subLinkType = pg_sys::SubLinkType::EXPR_SUBLINK;
        (*sublink).subLinkId = 0;
        (*sublink).subselect = query.cast();
        (*sublink).location = -1;

        // The planner turns SubLinks into SubPlans only in queries it knows to contain some.
        (*parse).hasSubLinks = true;
        Some(sublink.cast())
    }
}
