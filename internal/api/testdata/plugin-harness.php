<?php
// Runs infra/wordpress/broadsheet-push.php outside WordPress for
// hooks_php_test.go: the WordPress functions it calls are stubbed, but
// wp_remote_post really sends, to BROADSHEET_PUSH_URL. Usage:
//   php plugin-harness.php PLUGIN POST.json
// It fires publish (both hooks, as WordPress does), then an update, and
// prints the status of each request sent, one a line.
define( 'ABSPATH', __DIR__ );
define( 'BROADSHEET_PUSH_URL', getenv( 'BROADSHEET_PUSH_URL' ) );
define( 'BROADSHEET_PUSH_SECRET', getenv( 'BROADSHEET_PUSH_SECRET' ) );

$actions = array();
function add_action( $hook, $fn, $priority = 10, $args = 1 ) { $GLOBALS['actions'][ $hook ][] = $fn; }
function do_action( $hook, ...$args ) { foreach ( $GLOBALS['actions'][ $hook ] ?? array() as $fn ) { $fn( ...$args ); } }
function get_post_type( $id ) { return 'post'; }
function wp_json_encode( $v ) { return json_encode( $v, JSON_UNESCAPED_SLASHES ); }
function is_wp_error( $v ) { return false; }
function wp_remote_retrieve_response_code( $res ) { return $res['response']['code']; }

class WP_REST_Request {
	public function __construct( $method, $route ) {}
	public function set_query_params( $p ) {}
}
class Harness_Response {
	public function is_error() { return false; }
}
class Harness_Server {
	public function response_to_data( $response, $embed ) {
		// The post as the REST API would give it, plus a field the
		// plugin must leave out.
		$post            = json_decode( file_get_contents( $GLOBALS['post_file'] ), true );
		$post['content'] = array( 'rendered' => '<p>The whole story.</p>' );
		return $post;
	}
}
function rest_do_request( $request ) { return new Harness_Response(); }
function rest_get_server() { return new Harness_Server(); }

function wp_remote_post( $url, $args ) {
	$headers = '';
	foreach ( $args['headers'] as $k => $v ) {
		$headers .= "$k: $v\r\n";
	}
	$ctx = stream_context_create( array( 'http' => array( 'method' => 'POST', 'header' => $headers, 'content' => $args['body'], 'ignore_errors' => true, 'timeout' => $args['timeout'] ) ) );
	$body = file_get_contents( $url, false, $ctx );
	preg_match( '#^HTTP/\S+ (\d+)#', $http_response_header[0], $m );
	echo $m[1], ' ', $body, "\n";
	return array( 'response' => array( 'code' => (int) $m[1] ) );
}

$GLOBALS['post_file'] = $argv[2];
require $argv[1];

$post = (object) array( 'ID' => 4101, 'post_status' => 'publish' );
do_action( 'transition_post_status', 'publish', 'draft', $post );
do_action( 'post_updated', 4101, $post, (object) array( 'post_status' => 'draft' ) );
do_action( 'shutdown' );
do_action( 'post_updated', 4101, $post, $post );
do_action( 'shutdown' );
