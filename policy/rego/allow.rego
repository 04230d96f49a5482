# data.tollgate.allow is the decision's allow alone, for OPA clients that ask for a boolean
# (OPA's SDKs: evaluate("tollgate/allow", input)). It is the decision's field, not a rule of its
# own: every business rule stays in data.tollgate.decision.
package tollgate

allow := decision.allow
