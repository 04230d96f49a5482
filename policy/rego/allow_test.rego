package tollgate_test

test_allow_is_the_decisions_allow if {
	every c in common_cases {
		doc := object.get(c, "input", input_of(c))
		cat := object.get(c, "catalog", catalog)
		allow := data.tollgate.allow with input as doc with data.catalog as cat
		allow == decide(c).allow
	}
}

test_allow_answers_true_and_false if {
	some allowed in common_cases
	decide(allowed).allow == true
	some denied in common_cases
	decide(denied).allow == false
}

test_allow_is_undefined_without_input if {
	not data.tollgate.allow with data.catalog as catalog
}
