//! Planner support for the context functions.
//!
//! Citus refuses policies that contain a subquery, so on a distributed table warden's policies call
//! `warden.tenant_with_level(...)` directly. Left alone, PostgreSQL would call that function once
//! per row. Its support function (`SupportRequestSimplify`) rewrites such a call, when it has a
//! constant argument inside a query that reads rows, into the scalar subquery
//! `(SELECT warden.tenant_with_level(...))`, which the planner then turns into an InitPlan: one call
//! per statement, as with the policies `protect_table` writes for a single node. The policy as
//! stored (and as Citus inspects it) has no subquery; every node's planner makes the InitPlan.
//!
//! Equivalence: the function is STABLE, so within one statement every call returns the same value
//! anyway. The subquery's own call sits in a query without FROM, which is left alone, so the
//! rewrite never recurses.

use pgrx::prelude::*;
use pgrx::Internal;

/// `SupportRequestSimplify` for `warden.tenant_with_level(text)`.
#[pg_extern(immutable, parallel_safe)]
fn _tenant_with_level_support(request: Internal) -> Internal {
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
        let args = (*fcall).args;
        if args.is_null() || (*args).length != 1 {
            return None;
        }
        let arg = (*(*args).elements).ptr_value.cast::<pg_sys::Node>();
        if arg.is_null()
            || (*arg).type_ != pg_sys::NodeTag::T_Const
            || (*arg.cast::<pg_sys::Const>()).constisnull
        {
            return None; // only a constant level can be evaluated once for the whole statement
        }

        // SELECT <the same call>
        let call = pg_sys::copyObjectImpl(fcall.cast()).cast::<pg_sys::Expr>();
        let target = pg_sys::makeTargetEntry(call, 1, pg_sys::pstrdup(c"tenant".as_ptr()), false);
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
